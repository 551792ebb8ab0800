"""One subscriber's VP8 picture ids and TL0PICIDX over changing simulcast layers: pure.

Each simulcast layer numbers its pictures on its own (RFC 7741 payload
descriptor: a 7- or 15-bit PictureID, an 8-bit TL0PICIDX). A subscriber
switched from one layer to another would see them jump, which decoders
take for lost pictures. Like :class:`.stream_rewrite.StreamRewriter` for
sequence numbers, each run of a layer is mapped so that both go on from
where the last run stopped. Only those bytes of the descriptor change, in
place: the payload keeps its length and everything else.
"""

from __future__ import annotations


def descriptor_fields(payload: bytes) -> tuple[int, int, int, int] | None:
    """(offset of the PictureID, its width in bits (7 or 15; 0: none), offset of TL0PICIDX (-1:
    none), the PictureID) of a VP8 payload descriptor, or None when it is too short to be one."""
    size = len(payload)
    if size < 1:
        return None
    if not payload[0] & 0x80:  # X: no extension byte, so neither field
        return 0, 0, -1, 0
    if size < 2:
        return None
    extended = payload[1]
    offset = 2
    pid_offset, width, picture_id = 0, 0, 0
    if extended & 0x80:  # I
        if offset >= size:
            return None
        if payload[offset] & 0x80:  # M: 15 bits
            if offset + 1 >= size:
                return None
            pid_offset, width = offset, 15
            picture_id = ((payload[offset] & 0x7F) << 8) | payload[offset + 1]
            offset += 2
        else:
            pid_offset, width = offset, 7
            picture_id = payload[offset] & 0x7F
            offset += 1
    tl0_offset = -1
    if extended & 0x40:  # L
        if offset >= size:
            return None
        tl0_offset = offset
    return pid_offset, width, tl0_offset, picture_id


class Vp8Rewriter:
    """Maps the PictureID and TL0PICIDX of each run of a source onto one outgoing stream."""

    def __init__(self):
        self.last_picture_id: int | None = None  # newest outgoing PictureID (15-bit space)
        self.last_tl0: int | None = None
        self._pid_offset = 0
        self._tl0_offset = 0
        self._run_started = False

    def start_run(self) -> None:
        """The next packet rewritten starts a run (a keyframe of a new layer, or after a skip)."""
        self._run_started = False

    def rewrite(self, payload: bytes) -> bytes:
        """``payload`` with its PictureID and TL0PICIDX mapped into the outgoing stream."""
        fields = descriptor_fields(payload)
        if fields is None:
            return payload
        pid_offset, width, tl0_offset, picture_id = fields
        if not width and tl0_offset < 0:
            return payload
        tl0 = payload[tl0_offset] if tl0_offset >= 0 else None
        if not self._run_started:
            self._run_started = True
            if width:
                following = 0 if self.last_picture_id is None else self.last_picture_id + 1
                self._pid_offset = following - picture_id
            if tl0 is not None:
                following = 0 if self.last_tl0 is None else self.last_tl0 + 1
                self._tl0_offset = following - tl0
        out = bytearray(payload)
        if width == 15:
            mapped = (picture_id + self._pid_offset) & 0x7FFF
            out[pid_offset] = 0x80 | (mapped >> 8)
            out[pid_offset + 1] = mapped & 0xFF
            self._note_picture(mapped, 0x7FFF)
        elif width == 7:
            mapped = (picture_id + self._pid_offset) & 0x7F
            out[pid_offset] = mapped
            self._note_picture(mapped, 0x7F)
        if tl0 is not None:
            mapped_tl0 = (tl0 + self._tl0_offset) & 0xFF
            out[tl0_offset] = mapped_tl0
            if self.last_tl0 is None or 0 < (mapped_tl0 - self.last_tl0) & 0xFF < 0x80:
                self.last_tl0 = mapped_tl0
        return bytes(out)

    def _note_picture(self, mapped: int, mask: int) -> None:
        last = self.last_picture_id
        if last is None or 0 < (mapped - last) & mask <= mask // 2:
            self.last_picture_id = mapped
