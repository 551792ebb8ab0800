"""The reaches into aiortc 1.16's senders, receivers, DTLS transports and peer connections (asyncio side).

Each function touches the one object it is given, of one of our own
connections: the forwarder (:mod:`videoroomd.media.forwarding`,
:mod:`~videoroomd.media.publisher`, :mod:`~videoroomd.media.subscriber`) and the
connections (:mod:`videoroomd.media.rtc`) call these instead of reaching in
themselves.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from aiortc.rtcdtlstransport import State as DtlsState


def sender_ssrcs(sender) -> tuple[int, int]:
    """The (media, retransmission) SSRCs a sender announced in its SDP."""
    return sender._ssrc, sender._rtx_ssrc


def count_sent(sender, payload_size: int, newest: tuple[int, int] | None) -> None:
    """Count a packet we sent on ``sender``'s behalf in what its RTCP sender reports say;
    ``newest``: (NTP, RTP) timestamps when it is the newest packet of the stream."""
    if newest is not None:
        sender._RTCRtpSender__ntp_timestamp, sender._RTCRtpSender__rtp_timestamp = newest
    sender._RTCRtpSender__octet_count += payload_size
    sender._RTCRtpSender__packet_count += 1


def nominated_route(dtls) -> tuple[Any, Any] | None:
    """(SRTP session for sending, the nominated ICE candidate pair) while ``dtls`` is
    connected and a pair is nominated; else None."""
    if dtls._state is not DtlsState.CONNECTED:
        return None
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        return None
    return dtls._tx_srtp, pair


def pair_socket(pair) -> Any | None:
    """What to ``sendto`` for a candidate pair: the plain UDP socket under asyncio's
    transport (written directly: no asyncio buffer that could grow), or, for a pair
    relayed through a TURN allocation, aioice's TURN transport; None once it is closed."""
    transport = pair.protocol.transport
    if transport is None:
        return None
    return getattr(transport, "_sock", None) or transport


def send_pli(receiver, media_ssrc: int) -> Awaitable[None]:
    """A coroutine sending an RTCP PLI for ``media_ssrc`` from ``receiver``."""
    return receiver._send_rtcp_pli(media_ssrc)


def hand_packets_to(receiver, jitter_buffer: Any, decoder_queue: Any) -> None:
    """Replace ``receiver``'s jitter buffer (``add(packet) -> (pli?, frame)``) and its decoder
    queue (``get``/``put``): each packet it has decrypted goes to ``jitter_buffer``."""
    receiver._RTCRtpReceiver__jitter_buffer = jitter_buffer
    receiver._RTCRtpReceiver__decoder_queue = decoder_queue


def intercept_sender(sender, on_parameters: Callable[[Any], None],
                     on_rtcp: Callable[[Any, Callable[[Any], Awaitable[None]]], Awaitable[None]]) -> None:
    """Learn ``sender``'s negotiated parameters when it starts (``on_parameters``), and see
    every RTCP packet its subscriber sends first (``on_rtcp(packet, aiortc_handler)``)."""
    send = sender.send
    handle = sender._handle_rtcp_packet

    async def send_with_parameters(parameters):
        on_parameters(parameters)
        await send(parameters)

    async def handle_rtcp(packet):
        await on_rtcp(packet, handle)

    sender.send = send_with_parameters
    sender._handle_rtcp_packet = handle_rtcp


def use_certificate(pc, certificate) -> None:
    """Make ``pc`` use ``certificate`` for DTLS (aiortc makes one per connection otherwise)."""
    pc._RTCPeerConnection__certificates = [certificate]


def set_stream_id(sender, stream_id: str) -> None:
    """The msid stream id the next answer announces for ``sender``'s track."""
    sender._stream_id = stream_id
