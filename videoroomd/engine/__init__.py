"""The SFU engine: the Membrane media-event protocol, and forwarding of each participant's media to the others.

One engine per room, between the room's peers and the media worker that
carries its calls: media events in and out (``media_events``), who publishes
and receives what (``session``, pure), simulcast layer requests, and the
engine's side of the worker link (``media_side``). Imports rooms (the peers
it serves), ``media.workers`` (the link), ``sdp``, ``turn`` (credentials and
media addresses) and the shared mechanisms; never signalling or http.
"""
