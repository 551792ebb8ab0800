"""Which remote ICE candidates our host candidates can reach at all (pure code).

A socket on a loopback address reaches only loopback addresses, and the other
way round: pairing them only sends checks that cannot succeed. When the
daemon gathers on loopback only (``[ice] addresses = ["127.0.0.1"]``, a
machine that keeps media to itself), a client's other addresses and its
mDNS names (``.local``, which would be resolved by multicast on the host's
network) are therefore left out; on other addresses, a client's loopback
ones are.
"""

from __future__ import annotations

import ipaddress

from ...sdp.candidates import keep_candidates


def reachable(remote_host: str, local_addresses: tuple[str, ...]) -> bool:
    """Whether host candidates on ``local_addresses`` (all interfaces when empty) can reach ``remote_host``."""
    if not local_addresses:
        return True  # gathering on every interface but loopback: aioice decides, as it always did
    loopback_only = all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in local_addresses)
    try:
        remote = ipaddress.ip_address(remote_host.split("%")[0])
    except ValueError:  # an mDNS name or other host name: never on the loopback interface
        return not loopback_only
    return remote.is_loopback if loopback_only else not remote.is_loopback


def without_unreachable(sdp: str, local_addresses: tuple[str, ...]) -> str:
    """``sdp`` without the ``a=candidate`` lines :func:`reachable` says no to."""
    return keep_candidates(sdp, lambda host: reachable(host, local_addresses))
