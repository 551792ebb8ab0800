"""Signalling sockets: Phoenix-channel peer channels (/socket/websocket) and the P2P relay (/signaling/NAME).

They own the wire formats and the sockets. They reach a room only through
its participant link (:mod:`videoroomd.rooms.link`) and the daemon only
through the handlers' :class:`~videoroomd.context.Context`; never a Room, a
Peer or the daemon itself.
"""
