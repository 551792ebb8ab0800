"""The TURN server built into the daemon (RFC 8656), relaying only to the daemon's own media sockets.

Pure modules for the rules (:mod:`.credentials`, :mod:`.messages`,
:mod:`.channeldata`, :mod:`.framing`, :mod:`.allocations`, :mod:`.peers`)
and one trio module that owns the sockets (:mod:`.server`).
"""
