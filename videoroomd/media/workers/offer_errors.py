"""Offers the media library cannot apply: a short, stable refusal for the client, the detail in the log.

The engine refuses the malformed offers it can name before they reach a
worker (:mod:`videoroomd.sdp.offer_checks`). What aiortc still cannot apply
fails inside it with whatever it raises (an AssertionError, a KeyError, an
AttributeError...), whose text means nothing to a client. The worker
answers those with :class:`OfferRefused` and :data:`NOT_APPLIED`, the same
words each time, and logs the error with its traceback, rate-limited (a
client can send such offers as fast as it likes). Our own refusals that a
person can act on (no media port left in ``[ice] udp_ports``) keep their words.
"""

from __future__ import annotations

import structlog

from ...logs.ratelimit import ThrottledLog

NOT_APPLIED = "the media library could not apply this offer"

throttled = ThrottledLog(structlog.get_logger("videoroomd.media.offers"))


class OfferRefused(Exception):
    """An offer the worker's media connection could not apply; the text is what the client is told."""


def refused(error: Exception, endpoint: str) -> OfferRefused:
    """The refusal to raise for ``error``, raised while applying ``endpoint``'s offer (logged here)."""
    from ..webrtc.compat.ice import NoFreePort  # here: the daemon reads NOT_APPLIED without loading aiortc

    if isinstance(error, OfferRefused):
        return error
    if isinstance(error, NoFreePort):  # ours, and meant for the person: no media port left for them
        return OfferRefused(str(error))
    throttled.warning("offer not applied", peer=endpoint, error=f"{type(error).__name__}: {str(error)[:200]}",
                      exc_info=error)
    return OfferRefused(NOT_APPLIED)
