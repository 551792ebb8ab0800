"""What a receiver set up by :func:`.rtp.receive_directly` keeps for a Port that forwards its packets in C
(:mod:`.native_receive`): its REMB step and NACK sending, reached without a packet."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from .remb import PublisherRemb


class ReceiveState(NamedTuple):
    """A receiver's steps :func:`.rtp.receive_directly` keeps, for a Port that forwards its packets in C:
    ``arrived(arrival_ms, abs_send_time, size, ssrc)`` feeds REMB (None: no estimator),
    ``send_nack(media_ssrc, lost)``, the NACK generators per SSRC (simulcast, else None), ``layers``, and
    ``estimated(remb)``: send the REMB a compiled estimator (``_native.Remb``) made due, if any (None: no
    estimator)."""
    arrived: Callable[[int, int, int, int], None] | None
    send_nack: Callable[[int, list[int]], None]
    nacks: dict | None
    layers: Any
    estimated: Callable[[Any], None] | None = None


def remb_step(receiver, remb_policy: PublisherRemb, max_bitrate: Callable[[], int | None],
              later: Callable[[Any], None]) -> Callable[[int, int, int, int], None]:
    """``arrived(arrival_time_ms, abs_send_time, size, ssrc)``: feed one packet's arrival to the REMB
    policy of ``receiver`` and send the REMB it makes due."""

    def arrived(arrival_time_ms: int, abs_send_time: int, size: int, ssrc: int) -> None:
        send_remb(receiver, remb_policy.add(arrival_time_ms, abs_send_time, size, ssrc, max_bitrate()), later)

    return arrived


def native_remb_step(receiver, remb_policy: PublisherRemb, max_bitrate: Callable[[], int | None],
                     later: Callable[[Any], None]) -> Callable[[Any], None]:
    """``estimated(remb)``: send ``receiver``'s publisher the REMB its compiled estimator ``remb``
    (``_native.Remb``, fed by a Port in C) made due since the last call, through the same policy."""

    def estimated(remb) -> None:
        taken = remb.take()
        if taken is not None:
            send_remb(receiver, remb_policy.estimated(taken, max_bitrate()), later)

    return estimated


def send_remb(receiver, remb: tuple[int, list[int]] | None, later: Callable[[Any], None]) -> None:
    """Send ``remb`` (``(bitrate, ssrcs)``, or None: nothing) to ``receiver``'s publisher."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
    if rtcp_ssrc is not None and remb is not None:
        bitrate, ssrcs = remb
        later(receiver._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                                                 fci=pack_remb_fci(bitrate, ssrcs))))
