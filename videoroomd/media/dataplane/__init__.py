"""The data plane: one room's packet path inside a media worker, behind a flat interface.

:mod:`.interface` is the seam: publishers, connections and subscribers added
and linked by id, packets and each subscriber's RTCP fed in, events drained in
batches, counters read out; a call for an unknown id raises ``UnknownId``.
:mod:`.python_plane` is the reference implementation: a source per published
track (:mod:`.publisher`, plain or layered), a feed per subscriber of it
(:mod:`.feeds`), the subscriber's rewrite, history and send
(:mod:`.subscriber`), and what a connection's subscribers share
(:mod:`.connection`). The rest is pure: layer choice (:mod:`.gate`),
RID tables (:mod:`.layers`), sequence/timestamp and VP8 rewriting
(:mod:`.stream_rewrite`, :mod:`.vp8_rewrite`), RTP writing
(:mod:`.rtp_packets`), voice activity (:mod:`.vad`).

The compiled plane is being built in ``csrc/`` (C, compiled by setup.py into
``_native``): SRTP over OpenSSL and the parsers of untrusted datagrams so
far, loaded through :mod:`.native_module`.

Imports nothing of the package outside this folder, and nothing of aiortc:
:mod:`..webrtc` feeds it. A compiled plane
implements :mod:`.interface` and passes ``tests/daemon/test_dataplane_contract.py``.
"""
