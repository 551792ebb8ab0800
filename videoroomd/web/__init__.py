"""The daemon's own web client: static pages and modules, and the public room list they read.

Handlers get the daemon's :class:`~videoroomd.context.Context`; they may import
the config, http's request types, the token buckets and TURN's credentials;
never rooms, the engine or media.
"""
