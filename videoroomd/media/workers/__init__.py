"""Media workers and the link to them: processes (or a thread in tests) that carry rooms' calls.

Daemon side (trio): :mod:`.plane` starts and supervises the workers and places
each room on one (by :mod:`videoroomd.placement`); :mod:`.client` is one
worker seen from the daemon (requests, replies, heartbeats, loss). Worker side
(asyncio): :mod:`.process` is the process's entry point, :mod:`.server` turns
commands into work on the room's connections (:mod:`..webrtc`) and reports
events; :mod:`.event_loop` and :mod:`.task_errors` are its loop. What crosses
between them is :mod:`.commands` and :mod:`.events`, frozen dataclasses of
plain data, framed and checked by :mod:`.codec` (pure).

May import: the config, logs, TURN's worker relay (:mod:`videoroomd.turn.worker_relay`)
and :mod:`..webrtc` (worker side only); never the rooms or the engine.
"""
