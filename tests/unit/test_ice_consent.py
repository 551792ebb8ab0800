"""Consent to send (RFC 7675) on the media connections: an answer that comes late still counts."""

from __future__ import annotations

import asyncio

import aioice
import pytest
from aioice import ice as aioice_ice

from videoroomd.media.webrtc.compat.ice import keep_consent_of


def _only_loopback(connection) -> None:
    """Gather host candidates on 127.0.0.1 only (aioice on its own leaves loopback out)."""
    original = connection.get_component_candidates

    async def on_loopback(component, addresses=None, **kwargs):
        return await original(component=component, addresses=["127.0.0.1"], **kwargs)

    connection.get_component_candidates = on_loopback


def _answers_after(connection, delay: float | None) -> None:
    """``connection`` answers STUN checks ``delay`` seconds late (None: never), as a browser
    on a machine busy encoding now and then does."""
    answer = connection.request_received

    def request_received(message, addr, protocol):
        if delay is not None:
            asyncio.get_running_loop().call_later(delay, answer, message, addr, protocol)

    connection.request_received = request_received


async def _connected_for(seconds: float, remote_delay: float | None, ours_kept: bool) -> bool:
    """Whether the server side (controlled, as our media connections are) still carries data after
    ``seconds`` with a browser side whose consent answers come ``remote_delay`` late."""
    browser = aioice.Connection(ice_controlling=True, use_ipv6=False)
    server = aioice.Connection(ice_controlling=False, use_ipv6=False)
    for connection in (browser, server):
        _only_loopback(connection)
    if ours_kept:
        keep_consent_of(server)
    try:
        await asyncio.gather(browser.gather_candidates(), server.gather_candidates())
        for ours, theirs in ((server, browser), (browser, server)):
            for candidate in theirs.local_candidates:
                await ours.add_remote_candidate(candidate)
            await ours.add_remote_candidate(None)
            ours.remote_username, ours.remote_password = theirs.local_username, theirs.local_password
        await asyncio.wait_for(asyncio.gather(browser.connect(), server.connect()), 10)
        _answers_after(browser, remote_delay)
        await asyncio.sleep(seconds)
        await browser.send(b"still there?")
        try:
            return await asyncio.wait_for(server.recv(), 2) == b"still there?"
        except (ConnectionError, asyncio.TimeoutError):
            return False
    finally:
        await browser.close()
        await server.close()


@pytest.fixture
def short_consent(monkeypatch):
    # aioice's interval (5 s) and count (6) read where they are used: 0.3 s x 6, so that
    # what takes 30 s in a call takes 1.2 s here.
    monkeypatch.setattr(aioice_ice, "CONSENT_INTERVAL", 0.2)
    return 0.2 * aioice_ice.CONSENT_FAILURES


@pytest.mark.slow
def test_a_browser_whose_consent_answers_come_late_keeps_its_media_connection(short_consent):
    # 0.7 s late: after aioice's 0.5 s wait for each check, long before consent expires. aioice's
    # own checks counted each failed and closed the connection after six (~4.2 s here).
    assert asyncio.run(_connected_for(5.0, 0.7, ours_kept=True))


def test_a_browser_that_answers_no_check_still_loses_consent(short_consent):
    assert not asyncio.run(_connected_for(2 * short_consent, None, ours_kept=True))
