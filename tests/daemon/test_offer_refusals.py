"""Malformed offers that aiortc trips on are refused with a short, stable message naming what is wrong.

Each case is a real aiortc offer with one defect. Without the engine's check
each one ends inside aiortc with an AssertionError, KeyError, ValueError...
whose text means nothing to a client; with it, the client is told exactly
what its offer lacks. What aiortc still cannot apply is refused by the
worker with one stable message, the detail (with its traceback) in the log.
"""

from __future__ import annotations

import asyncio
import random
import re

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from testsupport.engine_attack import ROOMS, intruder, mutate_offer, real_offer
from testsupport.media_bot import Pattern, Tone, media_thread
from testsupport.signalling_helpers import running_daemon
from videoroomd.engine import engine as engine_module
from videoroomd.sdp.offer import SdpError, parse
from videoroomd.sdp.offer_checks import check_offer


def drop(pattern: str):
    return lambda sdp: "\r\n".join(line for line in sdp.split("\r\n") if not re.match(pattern, line))


def sub(pattern: str, replacement: str):
    return lambda sdp: re.sub(pattern, replacement, sdp, flags=re.M)


# defect -> (the offer with it, the exact refusal)
CASES = {
    "no ICE credentials": (drop(r"a=ice-(ufrag|pwd)"), "m-line 0 (audio) has no ICE credentials (a=ice-ufrag and a=ice-pwd)"),
    "no ICE password": (drop(r"a=ice-pwd"), "m-line 0 (audio) has no ICE credentials (a=ice-ufrag and a=ice-pwd)"),
    "no fingerprint": (drop(r"a=fingerprint"), "m-line 0 (audio) has no DTLS fingerprint (a=fingerprint)"),
    "no setup role": (drop(r"a=setup"), "m-line 0 (audio) has no DTLS role (a=setup)"),
    "bad setup role": (sub(r"a=setup:\w+", "a=setup:holdconn"),
                       "m-line 0 (audio): a=setup must be actpass, active or passive, not 'holdconn'"),
    "no mid": (drop(r"a=mid"), "m-line 0 (audio) has no a=mid"),
    "no payload types": (sub(r"^(m=audio \d+ \S+).*$", r"\1"), "m-line 0 (audio) lists no payload types"),
    "no rtpmap": (drop(r"a=rtpmap"), "m-line 0 (audio): dynamic payload type 96 has no a=rtpmap"),
    "no direction": (drop(r"a=(sendonly|recvonly|sendrecv)"),
                     "m-line 0 (audio) has no direction (a=sendrecv, a=sendonly, a=recvonly or a=inactive)"),
    "no rtcp-mux": (drop(r"a=rtcp-mux"), "m-line 0 (audio) has no a=rtcp-mux (RTP and RTCP must share one port)"),
    "unknown kind": (sub(r"^m=audio", "m=message"), "m-line 0 (message): only audio, video (and application) m-lines are served"),
}
LINE_CASES = {  # defects in one line: the message names the line (its number varies) and the attribute
    "rtpmap without clock rate": (sub(r"a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus"),
                                  "a=rtpmap must be 'a=rtpmap:PT NAME/CLOCK[/CHANNELS]': 'a=rtpmap:96 opus'"),
    "ssrc-group with words": (sub(r"a=ssrc-group:FID \d+ \d+", "a=ssrc-group:FID x y"),
                              "a=ssrc-group must be 'a=ssrc-group:SEMANTICS NUMBER...': 'a=ssrc-group:FID x y'"),
    "extmap without id": (sub(r"a=extmap:1 ", "a=extmap:x "), "a=extmap must be 'a=extmap:ID[/DIRECTION] URI'"),
    "short candidate": (sub(r"^(a=candidate:\S+ \d \S+ \d+ \S+ \d+) typ .*$", r"\1"), "a=candidate must be"),
}


async def aiortc_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(Tone(), direction="sendonly")
    pc.addTransceiver(Pattern(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def aiortc_applies(sdp: str) -> None:
    """Apply ``sdp`` as the worker would; raises what aiortc raises."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        for transceiver in pc.getTransceivers():
            transceiver.direction = "recvonly"
        await pc.setLocalDescription(await pc.createAnswer())
    finally:
        try:
            await pc.close()
        except Exception:
            pass  # a half-applied offer may not close cleanly either


@pytest.fixture(scope="module")
def offer() -> str:
    return asyncio.run(aiortc_offer())


def test_a_real_offer_passes(offer):
    check_offer(offer)


@pytest.mark.parametrize("defect", sorted(CASES))
def test_each_defect_aiortc_trips_on_is_named(offer, defect):
    mutate, message = CASES[defect]
    bad = mutate(offer)
    with pytest.raises(SdpError) as refused:
        check_offer(bad)
    assert str(refused.value) == message
    if defect not in ("no fingerprint",):  # aiortc takes that one, and DTLS fails later
        with pytest.raises(Exception) as raw:
            asyncio.run(aiortc_applies(bad))
        assert not isinstance(raw.value, SdpError)


@pytest.mark.parametrize("defect", sorted(LINE_CASES))
def test_each_malformed_line_aiortc_trips_on_is_named_with_its_line(offer, defect):
    mutate, message = LINE_CASES[defect]
    bad = mutate(offer)
    assert bad != offer
    with pytest.raises(SdpError) as refused:
        check_offer(bad)
    assert re.match(r"line \d+: ", str(refused.value)) and message in str(refused.value)
    with pytest.raises(Exception):
        asyncio.run(aiortc_applies(bad))


def test_mutated_offers_that_pass_the_check_never_trip_an_assertion_in_aiortc(offer):
    async def run() -> list[str]:
        rng = random.Random(23)
        tripped = []
        for _ in range(200):
            mutated = mutate_offer(offer, rng)
            try:
                parse(mutated)  # as the engine reads an offer: its limits, mids and BUNDLE group first
                check_offer(mutated)
            except SdpError:
                continue
            try:
                await aiortc_applies(mutated)
            except (AssertionError, KeyError, IndexError, AttributeError, TypeError, RuntimeError) as error:
                tripped.append(f"{type(error).__name__}: {error}")
            except ValueError:
                pass  # aiortc's own words for an offer it will not take, which the worker passes on
        return tripped

    assert asyncio.run(run()) == []


# -- what a client is told -----------------------------------------------------------------------------
async def test_the_client_is_told_what_its_offer_lacks_and_leaves_the_call(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        sdp, sending = await real_offer(media)
        for defect in ("no ICE credentials", "bad setup role", "no rtcp-mux"):
            mutate, message = CASES[defect]
            async with intruder(daemon) as client:
                error = await client.offer(mutate(sdp), sending)
                assert error["type"] == "error"
                assert error["data"]["message"] == f"offer refused: {message}"
                assert (await client.closed())["reason"] == f"offer refused: {message}"


async def test_an_offer_the_worker_cannot_apply_gets_one_stable_message_not_python_text(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_module, "check_offer", lambda sdp: None)  # as if the engine's check missed it
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        sdp, sending = await real_offer(media)
        for defect in ("bad setup role", "no setup role", "no payload types"):
            mutate, _ = CASES[defect]
            async with intruder(daemon) as client:
                error = await client.offer(mutate(sdp), sending)
                assert error["data"]["message"] == (
                    "the server could not accept this offer: OfferRefused: the media library could not apply this offer")
                assert await client.closed()


async def test_a_trickled_candidate_aiortc_cannot_read_is_refused_by_name_and_the_call_goes_on(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        sdp, sending = await real_offer(media)
        async with intruder(daemon) as client:
            assert (await client.offer(sdp, sending))["type"] == "sdpAnswer"
            await client.send({"type": "custom", "data": {"type": "candidate", "data": {
                "candidate": "candidate:1 1 udp", "sdpMLineIndex": 0, "sdpMid": "0", "usernameFragment": None}}})
            error = await client.next(("error",))
            assert error["data"]["message"] == (
                "candidate: a candidate is 'candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE ...'")
