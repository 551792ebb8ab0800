"""videoroomd: self-hosted video rooms in the browser.

Find a feature by its folder (docs/architecture.md draws the seams between
them): ``http`` (the one port), ``signalling`` (the two WebSocket protocols),
``web`` (the page), ``rooms`` (rooms, joins, the participant link, the
directory), ``engine`` (a room's media events), ``media`` (the worker
processes, their peer connections and the packet path), ``turn`` (the
built-in TURN server), ``cluster`` (several daemons on Redis), ``config``,
``daemon``, ``cli``, ``logs``, ``certs``, ``sdp``. The top-level modules are
small shared mechanisms with no I/O of their own.
"""

__version__ = "0.1.0"
