"""Which simulcast layer each SSRC of a publisher carries, learnt from the packets: pure.

A browser sending simulcast announces no SSRCs: each layer's first packets
carry its RID (rtp-stream-id header extension; its retransmissions carry
the repaired-rtp-stream-id), and it stops sending them once our receiver
reports reach it. So the table learns SSRC -> layer from those packets and
keeps it; a packet of an SSRC not learnt yet, or whose RID is none of the
offer's, belongs to no layer and is not forwarded.
"""

from __future__ import annotations


class RidTable:
    """The layers (RIDs, low to high) of one published track and the SSRCs that carry them."""

    def __init__(self, rids: list[str]):
        self.rids = list(rids)
        self._index = {rid: i for i, rid in enumerate(self.rids)}
        self.media: dict[int, int] = {}     # media SSRC -> layer
        self.rtx: dict[int, int] = {}       # retransmission SSRC -> layer
        self.media_ssrc: list[int | None] = [None] * len(self.rids)  # layer -> its media SSRC
        self.rtx_ssrc: list[int | None] = [None] * len(self.rids)    # layer -> its retransmission SSRC
        self.unknown_rids: set[str] = set()  # RIDs seen that the offer did not have (for the log)

    def learn(self, ssrc: int, rid: str | None, repaired_rid: str | None) -> None:
        """Note what a packet's header says (``rid``/``repaired_rid``: its extensions, or None)."""
        if rid is not None:
            layer = self._index.get(rid)
            if layer is None:
                self._note_unknown(rid)
            elif self.media.get(ssrc) != layer:
                old = self.media_ssrc[layer]
                if old is not None:
                    self.media.pop(old, None)  # the layer restarted on a new SSRC
                self.media[ssrc] = layer
                self.media_ssrc[layer] = ssrc
        elif repaired_rid is not None:
            layer = self._index.get(repaired_rid)
            if layer is None:
                self._note_unknown(repaired_rid)
            elif self.rtx.get(ssrc) != layer:
                old = self.rtx_ssrc[layer]
                if old is not None:
                    self.rtx.pop(old, None)  # one per layer: the table stays as small as the offer
                self.rtx[ssrc] = layer
                self.rtx_ssrc[layer] = ssrc

    def layer_of(self, ssrc: int) -> int | None:
        """The layer a media SSRC carries, None when not known."""
        return self.media.get(ssrc)

    def repaired_ssrc(self, rtx_ssrc: int) -> int | None:
        """The media SSRC that the retransmissions of ``rtx_ssrc`` repair, when known."""
        layer = self.rtx.get(rtx_ssrc)
        return None if layer is None else self.media_ssrc[layer]

    def _note_unknown(self, rid: str) -> None:
        if len(self.unknown_rids) < 16:  # a bounded record, whatever a client sends
            self.unknown_rids.add(rid[:16])
