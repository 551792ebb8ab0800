"""Recording a room's tracks as they arrive, and turning them into playable files afterwards (docs/recording.md).

``trackfile``: the append-only format of one recorded track (pure). ``writer``
and ``recorder``: what a media worker runs while a room records. ``room_control``:
who may start and stop, what the room is told (the engine's side is
``engine/recording_side.py``). ``frames``, ``export``, ``composite``,
``export_job``: the WebM files, in a process of their own. ``store``: the
recordings on disk (CLI, recordings page).

May import: ``config``, ``media.workers`` (commands, events), ``media.dataplane``'s pure helpers;
PyAV only in the export modules, and only when they run.
"""
