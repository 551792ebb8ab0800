"""Recording a room's tracks as they arrive, and turning them into playable files afterwards.

``trackfile``: the append-only file format of one recorded track (pure).
``recorder``: what a media worker runs while a room records (one writer per track).
See docs/recording.md.

May import: the standard library; ``recorder`` nothing of aiortc (it is handed plain packet fields).
"""
