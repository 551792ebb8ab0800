"""The TURN server built into the daemon (RFC 8656), relaying only to the daemon's own media sockets.

Pure modules for the rules: :mod:`.credentials` (REST-API usernames and
passwords, the long-term key), :mod:`.auth` (checking a request's
credentials and nonce), :mod:`.messages` (aioice's STUN codec plus the
checks a server needs), :mod:`.channeldata`, :mod:`.framing` (TCP/TLS
streams), :mod:`.allocations` (lifetimes, permissions, channels, quotas),
:mod:`.peers` (where relaying may go), :mod:`.relay_rules` (what one
relayed datagram may do, for the daemon and the media workers alike) and
:mod:`.clients` (the ``integratedTurnServers`` a join is handed). The
sockets are owned by :mod:`.listeners`, :mod:`.relay_ports`,
:mod:`.relaying` and :mod:`.server`; :mod:`.handing` hands clients to the
media workers, and :mod:`.worker_relay` is the half that runs in a media
worker (asyncio) and relays for the clients handed to it; :mod:`.configure` makes the server from the daemon's
configuration. Outside the package, the pure modules import only the config
schema and :mod:`videoroomd.token_buckets`; the media package is imported
only by :mod:`.handoff` (the way to the workers).
"""
