"""``POST /api/check/media``, the check page's peer connection to the media ports: what it refuses, and its bounds."""

from __future__ import annotations

import asyncio
import http.client

from aiortc import RTCPeerConnection

from testsupport.metrics import read, sample

ICE = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\n'


async def _make_offer(lines: int = 1) -> str:
    pc = RTCPeerConnection()
    for _ in range(lines):
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def post(daemon, body: bytes | str, content_type: str = "application/sdp", source: str = "127.0.0.1",
         method: str = "POST", query: str = "") -> tuple[int, str]:
    """(status, body text) of one request to the check's endpoint, sent from ``source``."""
    connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=15, source_address=(source, 0))
    try:
        data = body.encode() if isinstance(body, str) else body
        connection.request(method, "/api/check/media" + query, body=data or None, headers={"content-type": content_type})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def test_the_media_check_refuses_what_a_check_does_not_send_and_says_why(start_daemon):
    daemon = start_daemon(rooms=ICE)
    offer, three = asyncio.run(_make_offer()), asyncio.run(_make_offer(3))
    assert post(daemon, b"", method="GET")[0] == 405
    status, text = post(daemon, offer, content_type="text/plain")
    assert (status, text) == (415, "the offer must be sent with Content-Type: application/sdp\n")
    assert post(daemon, b"v=0\r\n\xff\xfe") == (400, "the offer is not UTF-8 text (byte 5)\n")
    status, text = post(daemon, "x" * (70 * 1024))  # past what the port reads of any body
    assert status == 413
    status, text = post(daemon, offer, query="?relay=someone")
    assert (status, text) == (400, "relay='someone' is not a check's TURN user (check- and 12 hex digits, as /api/check made it)\n")
    # Each of these is read, refused, and spends a check of this address (8 at once, then 1 each 2.5 s).
    refusals = [
        (offer + "a=x:" + "y" * 17000 + "\r\n", 413, "a check's is at most 16384"),
        ("hello", 400, "the offer cannot be read"),
        (offer.replace("m=audio", "m=application"), 400, "a check offers audio or video"),
        (three, 400, "the offer has 3 m-lines; a check offers at most 2"),
    ]
    status, text = post(daemon, offer, query="?relay=check-0123456789ab")
    assert (status, text) == (400, "this server runs no TURN server: a check cannot come through it\n")
    for body, want_status, want_text in refusals:
        status, text = post(daemon, body)
        assert status == want_status and want_text in text, (status, text)
    for _ in range(3):  # a real offer is answered: ICE and DTLS of the media worker, nothing sent
        status, answer = post(daemon, offer)
        assert status == 200 and "a=fingerprint:" in answer and "a=candidate:" in answer and "a=inactive" in answer
    status, text = post(daemon, offer)
    assert status == 429 and text.startswith("too many connectivity checks from 127.0.0.1; try again in ")
    metrics = read(daemon)
    assert sample(metrics, "videoroomd_media_checks_total", result="answered") == 3
    assert sample(metrics, "videoroomd_media_checks_total", result="refused") == 6
    assert sample(metrics, "videoroomd_media_checks_open") == 3
    assert sample(metrics, "videoroomd_peers", room="lobby", kind="rtc") == 0  # a check is no participant


def test_at_most_sixteen_checks_are_open_at_once(start_daemon):
    daemon = start_daemon(rooms=ICE)
    offer = asyncio.run(_make_offer())
    statuses = [post(daemon, offer, source=f"127.0.0.{n}")[0] for n in range(2, 5) for _ in range(7)]
    assert statuses == [200] * 16 + [503] * 5
    status, text = post(daemon, offer, source="127.0.0.9")
    assert (status, text) == (503, "16 connectivity checks are running; try again in a minute\n")
    assert sample(read(daemon), "videoroomd_media_checks_open") == 16
