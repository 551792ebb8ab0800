"""The one listening port: HTTP/1.1 for pages, /healthz, /metrics, admin; WebSocket upgrades.

The listener (``server``, ``accept``) owns the sockets and asks pure modules
for every decision (``limits``, ``ratelimit``, ``hosts``, ``forwarded``);
``routes`` is the one route table, and binds the handlers (signalling, web,
``status``) to the daemon's :class:`~videoroomd.context.Context`. Nothing here
imports rooms, the engine or media.
"""
