"""The aiortc/aioice adapter inside a media worker: peer connections around the data plane.

:mod:`.connections` holds one room's peer connections (an ``RTCPeerConnection``
per endpoint: offer/answer, ICE candidates, consent, the sockets it opened);
:mod:`.forwarding` feeds each received packet and each subscriber's RTCP into
the room's data plane (:mod:`..dataplane`) and applies the plane's events;
:mod:`.candidates` decides which remote candidates are reachable (pure);
:mod:`.compat` is every reach into aiortc's and aioice's internals, with its
version check. Python keeps ICE, DTLS and RTCP here; the per-packet work is the
data plane's.

May import :mod:`..dataplane`, :mod:`videoroomd.sdp` and aiortc; never the
worker link or anything of the daemon's control plane.
"""
