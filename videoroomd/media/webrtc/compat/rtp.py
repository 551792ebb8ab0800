"""The reaches into aiortc 1.16's senders, receivers, DTLS transports and peer connections (asyncio side).

Each function touches the one object it is given, of one of our own
connections: the data plane's adapter (:mod:`videoroomd.media.webrtc.forwarding`) and
the connections (:mod:`videoroomd.media.webrtc.connections`) call these instead of reaching in
themselves.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from typing import Any, Awaitable, Callable

import pylibsrtp
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, is_rtcp, unwrap_rtx

from ...dataplane.rtp_packets import NTP_EPOCH_OFFSET
from .nack import send_nack
from .rtcp_in import limit_rtcp, route_with_ours
from .receive_state import ReceiveState, native_remb_step, remb_step
from .remb import PublisherRemb, lighten


def sender_ssrcs(sender) -> tuple[int, int]:
    """The (media, retransmission) SSRCs a sender announced in its SDP."""
    return sender._ssrc, sender._rtx_ssrc


def report_sent(sender, stats: Callable[[], Any]) -> None:
    """Make ``sender``'s RTCP sender reports say what ``stats()`` says we sent on its behalf
    (``packets``, ``octets``, and ``ntp``/``rtp``: the timestamps of the newest packet);
    :func:`sync_sent` copies it in before each report."""
    sender._videoroomd_sent = stats


def sync_sent(sender) -> None:
    """Copy what was sent on ``sender``'s behalf (:func:`report_sent`) into what its reports read."""
    stats = getattr(sender, "_videoroomd_sent", None)
    if stats is None:
        return
    try:
        sent = stats()
    except KeyError:  # its slot is gone from the data plane: the counts stay as they were
        return
    sender._RTCRtpSender__ntp_timestamp, sender._RTCRtpSender__rtp_timestamp = sent.ntp, sent.rtp
    sender._RTCRtpSender__octet_count = sent.octets
    sender._RTCRtpSender__packet_count = sent.packets


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
    """What to ``sendto`` for a candidate pair: the plain UDP socket under the loop's
    transport (written directly: no loop buffer that could grow, and BlockingIOError
    when the kernel's send buffer is full), or, for a pair relayed through a TURN
    allocation, aioice's TURN transport; None once it is closed."""
    protocol = pair.protocol
    transport = protocol.transport
    if transport is None:
        return None
    sock = getattr(transport, "_sock", None)  # asyncio's selector transports
    if sock is not None:
        return sock
    if type(transport).__module__ == "uvloop.loop":
        return _own_socket(protocol, transport)
    return transport


def _own_socket(protocol, transport) -> socket.socket | None:
    """A socket object of our own on ``transport``'s file descriptor (uvloop's transports
    show only a pseudo-socket that cannot send), made once per transport and closed when
    ``protocol`` loses its connection: until then it holds the port open."""
    kept = getattr(protocol, "_videoroomd_socket", None)
    if kept is not None and kept[0] is transport:
        return kept[1] if kept[1].fileno() != -1 else None
    if transport.is_closing():
        return None
    sock = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
    sock.setblocking(False)
    if kept is not None:
        kept[1].close()
    protocol._videoroomd_socket = (transport, sock)
    if not getattr(protocol, "_videoroomd_closes_socket", False):
        lost = protocol.connection_lost

        def connection_lost(exc, _lost=lost, _protocol=protocol):
            kept = getattr(_protocol, "_videoroomd_socket", None)
            if kept is not None:
                kept[1].close()
            _lost(exc)

        protocol.connection_lost = connection_lost
        protocol._videoroomd_closes_socket = True
    return sock


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


# -- the receive path ---------------------------------------------------------------------------
#
# For each datagram of a publisher aiortc goes: aioice's STUN check, a queue, a task woken
# to take it, SRTP unprotect, RTP parse, then the receiver: REMB estimator, a datetime for
# getSynchronizationSources, receiver statistics, RTX unwrap, NACK generator, codec
# depayloading and the jitter buffer. The forwarder needs neither the datetime, the
# depayloading nor the jitter buffer, and a queue and task wakeup per packet cost more
# than the rest; what remains is done at once, as the datagram arrives.


class ReceivedExtensions:
    """The header extensions of a received packet that the server reads: abs-send-time (REMB),
    the audio level (voice activity, forwarded), the mid and the (repaired) RTP stream id
    (which stream a packet of an unsignalled SSRC belongs to). Reads like aiortc's
    ``HeaderExtensions``; the transmission offset and transport-wide sequence number are
    always None."""

    abs_send_time = None
    audio_level = None
    mid = None
    repaired_rtp_stream_id = None
    rtp_stream_id = None
    transmission_offset = None
    transport_sequence_number = None


_FIXED_HEADER = struct.Struct("!BBHII")
_ONE_BYTE_PROFILE = 0xBEDE


def parse_received(data: bytes, ids) -> RtpPacket:
    """An RTP packet as aiortc's ``RtpPacket.parse(data, map)`` reads it, for the receive path:
    of the header extensions only those of :class:`ReceivedExtensions` are read (their ids in
    ``ids``, the map's ``HeaderExtensions`` of ids), the rest is skipped. Raises ValueError
    where aiortc's would (short header, wrong version, truncated CSRC, extension or padding).
    A packet with two-byte header extensions (which browsers do not send) is read by aiortc."""
    size = len(data)
    if size < 12:
        raise ValueError("RTP packet length is less than 12 bytes")
    first, second, sequence_number, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise ValueError("RTP packet has invalid version")
    pos = 12 + 4 * (first & 0x0F)
    if size < pos:
        raise ValueError("RTP packet has truncated CSRC")
    packet = RtpPacket.__new__(RtpPacket)  # its __init__ would make extensions only to throw them away
    packet.version = 2
    packet.marker = second >> 7
    packet.payload_type = second & 0x7F
    packet.sequence_number = sequence_number
    packet.timestamp = timestamp
    packet.ssrc = ssrc
    packet.csrc = list(struct.unpack_from(f"!{first & 0x0F}L", data, 12)) if first & 0x0F else []
    packet.padding_size = 0
    extensions = ReceivedExtensions()
    if first & 0x10:
        if size < pos + 4:
            raise ValueError("RTP packet has truncated extension profile / length")
        profile = (data[pos] << 8) | data[pos + 1]
        end = pos + 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
        if size < end:
            raise ValueError("RTP packet has truncated extension value")
        if profile != _ONE_BYTE_PROFILE:
            return RtpPacket.parse(data, _map_of(ids))
        send_time_id, level_id = ids.abs_send_time, ids.audio_level
        pos += 4
        while pos < end:
            head = data[pos]
            if head == 0:  # padding between elements
                pos += 1
                continue
            ext_id, length = head >> 4, (head & 0x0F) + 1
            pos += 1
            if pos + length > end:
                raise ValueError("RTP one-byte header extension value is truncated")
            if ext_id == send_time_id:
                extensions.abs_send_time = int.from_bytes(data[pos:pos + length], "big")
            elif ext_id == level_id:
                level = data[pos]
                extensions.audio_level = (level & 0x80 == 0x80, level & 0x7F)
            elif ext_id == ids.mid:  # (browsers send these three only until the SSRC is known)
                extensions.mid = data[pos:pos + length].decode("utf8")
            elif ext_id == ids.rtp_stream_id:
                extensions.rtp_stream_id = data[pos:pos + length].decode("ascii")
            elif ext_id == ids.repaired_rtp_stream_id:
                extensions.repaired_rtp_stream_id = data[pos:pos + length].decode("ascii")
            pos += length
    packet.extensions = extensions
    if first & 0x20:
        padding = data[-1]
        if not padding or padding > size - pos:
            raise ValueError("RTP packet padding length is invalid")
        packet.padding_size = padding
        packet.payload = data[pos:-padding]
    else:
        packet.payload = data[pos:]
    return packet


def _map_of(ids):
    """A HeaderExtensionsMap with the extension ids ``ids`` (for aiortc's own parse)."""
    extensions_map = HeaderExtensionsMap()
    extensions_map._HeaderExtensionsMap__ids = ids
    return extensions_map


def extension_ids(extensions_map):
    """The ``HeaderExtensions`` of ids inside aiortc's ``HeaderExtensionsMap`` (set in place on
    each negotiation, so it stays current)."""
    return extensions_map._HeaderExtensionsMap__ids


def arrival_ms() -> int:
    """Now, in milliseconds since 1900, as aiortc's ``clock.current_ms`` (without a datetime)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 1000)


MAX_LAYER_SSRCS = 16  # NACK generators one simulcast track keeps at once


def receive_directly(receiver, on_packet: Callable[[Any], None], layers=None,
                     max_bitrate: Callable[[], int | None] = lambda: None) -> None:
    """Make ``receiver`` hand each RTP packet of its publisher to ``on_packet(packet)`` (RTX
    unwrapped) after keeping what the publisher relies on: receiver statistics (for its
    RTCP receiver reports), NACKs of lost packets and REMB; no datetime, depayloading
    or jitter buffer. :func:`take_rtp_at_once` calls it without a queue or task.

    ``layers``: for a simulcast track, what learns each packet's layer from its RID
    (``learn(ssrc, rid, repaired_rid)``, ``repaired_ssrc(rtx_ssrc)``); retransmissions are then unwrapped onto
    the SSRC of the layer they repair, and losses are told apart (NACKed) per SSRC.
    ``max_bitrate()``: the most our REMB lets the publisher send (None: the default ceiling);
    :class:`.remb.PublisherRemb` says what it is sent (the ceiling unless the estimator sees
    overuse, then its estimate). The REMB estimator counts the incoming bitrate with :class:`.remb.WindowRate` (same figures)."""
    lighten(receiver)
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    remb_policy = PublisherRemb(estimator) if estimator is not None else None
    codecs = receiver._RTCRtpReceiver__codecs
    rtx_ssrcs = receiver._RTCRtpReceiver__rtx_ssrc
    streams = receiver._RTCRtpReceiver__remote_streams
    nack = receiver._RTCRtpReceiver__nack_generator
    # Per media SSRC for simulcast: one generator fed three sequence number spaces would
    # NACK garbage. Only made when aiortc made its own (NACK negotiated).
    nacks: dict[int, NackGenerator] | None = {} if layers is not None and nack is not None else None
    tasks: set[asyncio.Future] = set()

    def later(coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    arrived = remb_step(receiver, remb_policy, max_bitrate, later) if remb_policy is not None else None
    estimated = native_remb_step(receiver, remb_policy, max_bitrate, later) if remb_policy is not None else None

    def handle(packet, arrival_time_ms: int) -> None:
        if not receiver._enabled:
            return
        if remb_policy is not None and packet.extensions.abs_send_time is not None:
            arrived(arrival_time_ms, packet.extensions.abs_send_time, len(packet.payload) + packet.padding_size,
                    packet.ssrc)
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        if layers is not None:
            extensions = packet.extensions
            if extensions.rtp_stream_id is not None or extensions.repaired_rtp_stream_id is not None:
                layers.learn(packet.ssrc, extensions.rtp_stream_id, extensions.repaired_rtp_stream_id)
        stream = streams.get(packet.ssrc)
        if stream is None:
            stream = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        if is_rtx(codec):
            original_ssrc = rtx_ssrcs.get(packet.ssrc)
            if original_ssrc is None and layers is not None:
                original_ssrc = layers.repaired_ssrc(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or not isinstance(apt, int) or apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        if nacks is not None:
            generator = nacks.get(packet.ssrc)
            if generator is None:
                if len(nacks) >= MAX_LAYER_SSRCS:
                    nacks.clear()  # SSRCs that came and went: start over rather than grow
                generator = nacks[packet.ssrc] = NackGenerator()
            if generator.add(packet):
                later(send_nack(receiver, packet.ssrc, sorted(generator.missing)))
        elif nack is not None and nack.add(packet):
            later(send_nack(receiver, packet.ssrc, sorted(nack.missing)))
        on_packet(packet)

    async def handle_queued(packet, arrival_time_ms: int) -> None:
        handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle_queued
    receiver._videoroomd_receive = handle
    # What a Port forwarding this receiver's SSRCs in C needs of it (.native_receive)
    receiver._videoroomd_state = ReceiveState(arrived, lambda ssrc, lost: later(send_nack(receiver, ssrc, lost)),
                                              nacks, layers, estimated)


def take_rtp_at_once(dtls) -> None:
    """Make the SRTP datagrams of RTP (not RTCP) that reach ``dtls``'s ICE connection go,
    as they arrive, through unprotect, parse and routing to a receiver set up by
    :func:`receive_directly`, instead of a queue and a task woken per datagram; all else
    (STUN, DTLS, RTCP, RTP before the handshake is done or for another receiver) takes
    aiortc's way. Counts them in the transport's statistics as aiortc does. Call before
    :func:`.ice.watch_incoming` (whose ``heard`` then still sees every datagram); once per
    ICE connection, later calls do nothing. The connection keeps ``dtls`` and the step
    after SRTP (:func:`decrypted_rtp_router`) for a socket handed to the compiled module."""
    connection = dtls.transport._connection
    if getattr(connection, "_videoroomd_rtp_at_once", False):
        return
    limit_rtcp(dtls)
    route_with_ours(dtls)
    deliver = connection.data_received
    route = decrypted_rtp_router(dtls)

    def data_received(data: bytes, component: int) -> None:
        srtp = dtls._rx_srtp
        if srtp is None or not data or not 127 < data[0] < 192 or is_rtcp(data):
            deliver(data, component)
            return
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        # When the kernel received it, where the socket told (.ice.media_skips_stun_check).
        arrival_time_ms = getattr(connection, "_videoroomd_arrival_ms", None) or arrival_ms()
        try:
            plain = srtp.unprotect(data)
        except pylibsrtp.Error:
            return  # as aiortc: a packet that does not decrypt is dropped
        route(plain, arrival_time_ms)

    connection.data_received = data_received
    connection._videoroomd_rtp_at_once = True
    connection._videoroomd_dtls = dtls
    connection._videoroomd_route_rtp = route


def decrypted_rtp_router(dtls) -> Callable[[bytes, int], None]:
    """``route(rtp, arrival_time_ms)``: the receive path of ``dtls`` after its SRTP step: parse,
    find the receiver (by SSRC, or by mid for an SSRC the offer did not announce) and hand the
    packet to it. A packet that does not parse is dropped; an error of the receiver goes to the
    loop's exception handler and the next packet goes on."""
    router = dtls._rtp_router
    ids = extension_ids(dtls._rtp_header_extensions_map)

    def route(plain: bytes, arrival_time_ms: int) -> None:
        try:
            packet = parse_received(plain, ids)
        except ValueError:
            return  # as aiortc: a packet that does not parse is dropped
        ssrc_table = router.ssrc_table
        if packet.ssrc not in ssrc_table and packet.extensions.mid is not None:
            # An SSRC the offer did not announce (simulcast layers never are): aiortc would
            # route it by payload type alone, which fails once two receivers share it.
            by_mid = router.mid_table.get(packet.extensions.mid)
            if by_mid is not None:
                ssrc_table[packet.ssrc] = by_mid
        receiver = router.route_rtp(packet)
        if receiver is None:
            return
        handle = getattr(receiver, "_videoroomd_receive", None)
        try:
            if handle is not None:
                handle(packet, arrival_time_ms)
            else:
                asyncio.ensure_future(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms))
        except Exception as error:  # kept for a look by the loop's handler; the next packet goes on
            asyncio.get_running_loop().call_exception_handler(
                {"message": "a received RTP packet could not be handled", "exception": error})

    return route


def count_received(dtls, size: int) -> None:
    """Count a datagram of ``size`` bytes in ``dtls``'s statistics, as aiortc counts what it reads."""
    dtls._RTCDtlsTransport__rx_bytes += size
    dtls._RTCDtlsTransport__rx_packets += 1
