"""Chromium on the media sockets the compiled module reads (``[media] data_plane = "native"``): the page's
call carries video both ways, keeps it through the ICE restart and renegotiation a newcomer causes (the
page restarts ICE before every renegotiation), and the worker says that each connection's socket runs
natively, that the compiled plane forwards to it and that Chromium's RTCP about what it receives (receiver
reports, REMB, NACK, PLI) is done in C."""

from __future__ import annotations

import json

import pytest

from testsupport.metrics import families, read
from testsupport.web_page import ROOMS, participant, wait_for_moving_video
from testsupport.wait import wait_for

pytestmark = pytest.mark.browser


def socket_paths(daemon) -> list[dict]:
    return [json.loads(line)["path"] for line in daemon.log().splitlines() if '"media socket path"' in line]


def rtcp_in_c(daemon) -> float:
    return sum(sample.value for family in families(read(daemon)) for sample in family.samples
               if sample.name == "videoroomd_media_worker_port_rtcp_in_c_total")


def test_a_call_of_chromium_pages_runs_on_the_compiled_sockets_through_renegotiations(browser, start_daemon):
    daemon = start_daemon(rooms=ROOMS, media='workers = 1\ndata_plane = "native"')
    ann = participant(browser, daemon, "Ann")
    bob = participant(browser, daemon, "Bob")
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(bob, "Ann")
    cleo = participant(browser, daemon, "Cleo")  # Ann's and Bob's connections renegotiate, with ICE restarts
    for page, others in ((ann, ("Bob", "Cleo")), (bob, ("Ann", "Cleo")), (cleo, ("Ann", "Bob"))):
        for other in others:
            wait_for_moving_video(page, other)
    paths = wait_for(lambda: found if len(found := socket_paths(daemon)) >= 3 else None, 10,
                     "a socket path logged for each connection", details=daemon.log)
    assert all(path == {"0": "native"} for path in paths), paths
    assert "could not take over" not in daemon.log()
    # and the compiled plane forwards: each connection got its route (socket, address, keys) from it
    routes = [json.loads(line) for line in daemon.log().splitlines() if '"compiled plane route"' in line]
    assert {route["peer"] for route in routes} == {json.loads(line)["peer"] for line in daemon.log().splitlines()
                                                   if '"media socket path"' in line}, routes
    assert not any(route["relayed"] for route in routes) and "could not be made" not in daemon.log()
    assert '"runs": "native"' in daemon.log()
    wait_for(lambda: rtcp_in_c(daemon) > 10, 10, "Chromium's RTCP compounds done in C", details=lambda: read(daemon))
    for page in (ann, bob, cleo):
        page.context.close()
