"""The NACKs our receivers send (and the test bots): packed across the sequence-number wrap."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpPacket

from videoroomd.media.webrtc.compat.nack import WrapNack, nack_fci


def fci_pairs(data: bytes) -> list[tuple[int, int]]:
    return [struct.unpack("!HH", data[pos:pos + 4]) for pos in range(12, len(data), 4)]


@pytest.mark.parametrize("last", [0, 10, 998, 999, 40000, 65535])
def test_the_last_1000_sequence_numbers_in_the_order_they_went_are_packed_and_read_back(last):
    lost = [(last - n) % 65536 for n in range(1000)][::-1]
    data = bytes(WrapNack(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=2, lost=lost))
    (packet,) = RtcpPacket.parse(data)
    assert (packet.ssrc, packet.media_ssrc) == (1, 2)
    assert [seq & 0xFFFF for seq in packet.lost] == lost  # aiortc reads the bits past the wrap as 65536...
    assert len(fci_pairs(data)) == 59  # 17 a FCI, none wasted at the wrap


def test_a_run_across_the_wrap_is_one_fci_with_its_bits_past_65535():
    assert nack_fci([65534, 65535, 0, 1, 14]) == [(65534, 0b1000000000000111)]
    assert nack_fci([65535, 0x10000, 0x10000 + 15]) == [(65535, 0b1000000000000001)]  # as aiortc reads them


def test_numbers_out_of_order_or_named_twice_start_a_new_fci_or_are_dropped_never_raise():
    assert nack_fci([5, 5, 4, 40, 3]) == [(5, 0), (4, 0), (40, 0), (3, 0)]
    assert nack_fci([]) == []
    assert nack_fci([-1, 2 ** 40]) == [(65535, 0b1)]  # modulo 2**16: 65535, then 0
