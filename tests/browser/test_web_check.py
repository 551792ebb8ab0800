"""The connectivity check page (/check), in Chromium, against a daemon with its TURN server on."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
import trio
from playwright.sync_api import expect

from testsupport.daemon import free_port
from testsupport.metrics import read, sample
from testsupport.turn_client import TurnClient
from testsupport.web_page import ICE

def _hold_an_allocation(daemon, turn_port: int) -> None:
    """One relayed address taken on the daemon's TURN server (with another check's credentials), kept
    there after this returns: the server sees a client that went quiet."""
    with urllib.request.urlopen(f"{daemon.url}/api/check", timeout=5) as response:
        server = json.load(response)["turn"][0]

    async def allocate() -> None:
        async with TurnClient("udp", ("127.0.0.1", turn_port)) as client:
            await client.allocate(server["username"], server["credential"])

    trio.run(allocate)


def _checked(page, daemon) -> None:
    page.goto(f"{daemon.url}/check")
    expect(page.locator("#check-summary[data-done='1']")).to_be_visible(timeout=30000)


@pytest.mark.browser
@pytest.mark.slow
def test_the_check_page_tries_a_call_s_connection_then_each_relay_transport(browser, start_daemon):
    plain = start_daemon(rooms=ICE + "[rooms.lobby]\n", name="plain.toml")
    turn_port = free_port()
    relayed = start_daemon(rooms=f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n' + ICE + "[rooms.lobby]\n",
                           name="relayed.toml")
    # Every port of [ice] udp_ports taken by another program: the server cannot open its media.
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    blocked = start_daemon(rooms=f'[ice]\naddresses = ["127.0.0.1"]\nudp_ports = "{port}-{port}"\n[rooms.lobby]\n',
                           name="blocked.toml")
    full_port = free_port()  # a relay with every allocation it may make taken
    full = start_daemon(rooms=f'[turn]\nenabled = true\nlisten = "127.0.0.1:{full_port}"\nmax_allocations = 1\n'
                        + ICE + "[rooms.lobby]\n", name="full.toml")
    _hold_an_allocation(full, full_port)
    page = browser.new_context().new_page()

    # The default config (no [turn]): the direct path is tried for real, and calls work.
    _checked(page, plain)
    expect(page.locator("#check-udp")).to_have_attribute("data-state", "works")
    expect(page.locator("#check-udp")).to_contain_text("Direct UDP: Works: a connection like a call's reached")
    expect(page.locator("#check-results li[data-state='fails']")).to_have_count(0)
    expect(page.locator("#check-turn-udp")).to_contain_text("Not tried: this server runs no relay (TURN)")
    expect(page.locator("#check-summary")).to_have_attribute("data-verdict", "good")
    expect(page.locator("#check-summary")).to_have_text(
        "Calls work from this network: they send sound and video straight to the server.")
    assert sample(read(plain), "videoroomd_media_checks_total", result="answered") == 1
    assert sample(read(plain), "videoroomd_peers", room="lobby", kind="rtc") in (0, None)  # no room slot taken

    # The built-in TURN server on: each transport it offers is tried, the one it does not is said.
    _checked(page, relayed)
    for item in ("udp", "turn-udp", "turn-tcp"):
        expect(page.locator(f"#check-{item}")).to_have_attribute("data-state", "works")
    expect(page.locator("#check-turn-tcp")).to_contain_text(
        "TURN over TCP: Works: a connection like a call's reached the media ports through the server's relay over TCP")
    expect(page.locator("#check-turn-tls")).to_have_text("TURN over TLS: Not tried: this server's relay does not offer it.")
    expect(page.locator("#check-summary")).to_have_text("Calls work from this network: they send sound and video "
                                                        "straight to the server. The relay works too (TURN over UDP, TCP).")
    assert sample(read(relayed), "videoroomd_media_checks_total", result="answered") == 3  # direct, and through each relay

    # The media ports unusable: the row and the verdict say what fails, and whose it is to fix.
    _checked(page, blocked)
    expect(page.locator("#check-udp")).to_have_attribute("data-state", "fails")
    expect(page.locator("#check-udp")).to_contain_text(
        f"Direct UDP: Does not work: the server could not open its media for the check: no free UDP port on 127.0.0.1 "
        f"in [ice] udp_ports {port}-{port}")
    expect(page.locator("#check-summary")).to_have_attribute("data-verdict", "bad")
    expect(page.locator("#check-summary")).to_contain_text(
        "Calls cannot carry sound and video now: the server could not open its media for this check")
    expect(page.locator("#check-again")).to_be_visible()

    # The relay answers but refuses (486: its allocations all taken): said as the server's, not "port blocked".
    _checked(page, full)
    expect(page.locator("#check-udp")).to_have_attribute("data-state", "works")
    for item, transport in (("turn-udp", "UDP"), ("turn-tcp", "TCP")):
        expect(page.locator(f"#check-{item}")).to_have_attribute("data-state", "fails")
        expect(page.locator(f"#check-{item}")).to_contain_text(
            f"Does not work: the relay answered over {transport} but refused this browser a relayed address: "
            "its allocation quota is reached (allocations held on the server, by this check or from this address; "
            "[turn] max_allocations and its per-user and per-address shares) (486). "
            "That is for the server's administrator to fix, not a problem of this network.")
    assert sample(read(full), "videoroomd_turn_refused_total", code="486") >= 2
    page.context.close()
    taken.close()


def test_check_credentials_are_rate_limited_per_address(start_daemon):
    turn_port = free_port()
    daemon = start_daemon(rooms=f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n' + ICE + "[rooms.lobby]\n")
    with urllib.request.urlopen(f"{daemon.url}/api/check", timeout=5) as response:
        offered = json.load(response)
    assert offered["stun"] == f"stun:127.0.0.1:{turn_port}"
    assert [s["urls"] for s in offered["turn"]] == [f"turn:127.0.0.1:{turn_port}?transport=udp",
                                                   f"turn:127.0.0.1:{turn_port}?transport=tcp"]
    assert offered["turn"][0]["username"].split(":", 1)[1].startswith("check-")
    statuses = []
    for _ in range(8):
        try:
            with urllib.request.urlopen(f"{daemon.url}/api/check", timeout=5) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            assert "too many connectivity checks from 127.0.0.1" in error.read().decode()
    assert 429 in statuses
    with urllib.request.urlopen(f"{daemon.url}/healthz", timeout=5) as response:  # the daemon still answers
        assert response.status == 200
