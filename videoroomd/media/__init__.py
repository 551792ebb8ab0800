"""The media plane: worker processes that carry the rooms' calls, each with its packet path.

Three folders, one concern each, imported in this order only:

- :mod:`.workers`: the worker link and the worker process. The daemon's side
  (:mod:`.workers.plane`, :mod:`.workers.client`, trio) starts, supervises and
  places rooms on workers and speaks typed messages (:mod:`.workers.commands`,
  :mod:`.workers.events`, one codec) to each; the worker's side
  (:mod:`.workers.server`, :mod:`.workers.process`, asyncio) serves them.
- :mod:`.webrtc`: the aiortc/aioice adapter inside a worker: one peer
  connection per endpoint (ICE, DTLS, RTCP, consent), every reach into the
  libraries' internals (:mod:`.webrtc.compat`), and the hooks that feed
  received packets into the data plane and apply its events.
- :mod:`.dataplane`: the packet path behind a flat interface of ids and plain
  data (:mod:`.dataplane.interface`), with the Python forwarder as its
  reference implementation (:mod:`.dataplane.python_plane`). It imports
  neither aiortc nor the other two folders.

The daemon's control plane (rooms, engine) imports :mod:`.workers` only.
"""
