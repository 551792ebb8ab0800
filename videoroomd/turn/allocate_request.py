"""What an Allocate request asks for that this server does not serve (pure code, RFC 8656 §7.2).

Only UDP relaying is served, on relayed addresses of one family, and
DONT-FRAGMENT only where the relay socket can honour it.
"""

from __future__ import annotations

from .messages import DONT_FRAGMENT, UNKNOWN_ATTRIBUTES, Decoded, Malformed, requested_family, unknown_attributes_value

UDP_TRANSPORT = 17  # REQUESTED-TRANSPORT: the only relay transport served


def allocate_problem(decoded: Decoded, relay_family: int, can_set_dont_fragment: bool
                     ) -> tuple[int, str | None, tuple[tuple[int, bytes], ...]] | None:
    """``(code, reason, extra attributes)`` of the error to answer ``decoded`` (an Allocate) with,
    or None when it asks for nothing unserved; ``relay_family`` is 1 (IPv4) or 2 (IPv6)."""
    transport = decoded.message.attributes.get("REQUESTED-TRANSPORT")
    if transport is None:
        return 400, "REQUESTED-TRANSPORT is missing", ()
    if transport >> 24 != UDP_TRANSPORT:
        return 442, "only UDP relaying is served", ()
    try:
        family = requested_family(decoded.raw)
    except Malformed:
        return 400, "REQUESTED-ADDRESS-FAMILY is malformed", ()
    if family is not None and family != relay_family:
        return 440, f"relayed addresses here are IPv{4 if relay_family == 1 else 6}", ()
    if DONT_FRAGMENT in decoded.raw and not can_set_dont_fragment:
        # §7.2: a server that cannot send with DF set treats DONT-FRAGMENT as unknown.
        return 420, None, ((UNKNOWN_ATTRIBUTES, unknown_attributes_value((DONT_FRAGMENT,))),)
    return None
