"""The compiled SRTP (dataplane/csrc/srtp*.c): RFC 3711's test vectors, and libsrtp (pylibsrtp, what aiortc
uses) reading what it protects and the other way round, for the two AES-CM profiles and the two AES-GCM ones
(RFC 7714, what aiortc offers first), across a rollover."""

from __future__ import annotations

import random

import pylibsrtp
import pytest

from testsupport.rtp_datagrams import browser_rtp, compounds, one_byte_elements, rtp
from videoroomd.media.dataplane.native_module import load

native = load()

KEY = bytes(range(1, 33))
SALT = bytes(range(101, 115))
P = pylibsrtp.Policy
PROFILES = [  # ours, libsrtp's, SRTP tag, SRTCP trailer, master key and salt lengths
    pytest.param(native.AES_CM_128_HMAC_SHA1_80, P.SRTP_PROFILE_AES128_CM_SHA1_80, 10, 14, 16, 14, id="cm_sha1_80"),
    pytest.param(native.AES_CM_128_HMAC_SHA1_32, P.SRTP_PROFILE_AES128_CM_SHA1_32, 4, 14, 16, 14, id="cm_sha1_32"),
    pytest.param(native.AEAD_AES_128_GCM, P.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 20, 16, 12, id="gcm_128"),
    pytest.param(native.AEAD_AES_256_GCM, P.SRTP_PROFILE_AEAD_AES_256_GCM, 16, 20, 32, 12, id="gcm_256"),
]


def ours(profile: int, key_len: int, salt_len: int, key: bytes = KEY):
    return native.SrtpSession(profile, key[:key_len], SALT[:salt_len])


def libsrtp(profile: int, key_len: int, salt_len: int, inbound: bool) -> pylibsrtp.Session:
    kind = P.SSRC_ANY_INBOUND if inbound else P.SSRC_ANY_OUTBOUND
    return pylibsrtp.Session(P(key=KEY[:key_len] + SALT[:salt_len], ssrc_type=kind, srtp_profile=profile))


def cm80():
    return ours(native.AES_CM_128_HMAC_SHA1_80, 16, 14)


def test_the_aes_cm_keystream_is_rfc3711_b2():
    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    iv = bytes.fromhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
    stream = native.aes_cm_keystream(key, iv, 0xFF02 * 16)
    blocks = {0x0000: "E03EAD0935C95E80E166B16DD92B4EB4", 0x0001: "D23513162B02D0F72A43A2FE4A5F97AB",
              0x0002: "41E95B3BB0A2E8DD477901E4FCA894C0", 0xFEFF: "EC8CDF7398607CB0F2D21675EA9EA1E4",
              0xFF00: "362B7C3C6773516318A077D7FC5073AE", 0xFF01: "6A2CC3787889374FBEB4C81B17BA6C44"}
    for block, expected in blocks.items():
        assert stream[block * 16:(block + 1) * 16].hex().upper() == expected


def test_the_session_keys_are_rfc3711_b3():
    key = bytes.fromhex("E1F97A0D3E018BE0D64FA32C06DE4139")
    salt = bytes.fromhex("0EC675AD498AFEEBB6960B3AABE6")
    assert native.derive_key(key, salt, 0, 16).hex().upper() == "C61E7A93744F39EE10734AFE3FF7A087"
    assert native.derive_key(key, salt, 2, 14).hex().upper() == "30CBBC08863D8C85D49DB34A9AE1"
    assert native.derive_key(key, salt, 1, 94).hex().upper() == (
        "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCEE049646C43D9327AD175578EF7227098"
        "6371C10C9A369AC2F94A8C5FBCDDDC256D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2")


def packets(rng: random.Random, count: int, first_seq: int) -> list[bytes]:
    """Two SSRCs interleaved, every header shape a client sends, crossing a sequence-number rollover."""
    out = []
    for i in range(count):
        seq = (first_seq + i // 2) & 0xFFFF
        if i % 2:
            out.append(browser_rtp(seq, rng))
        else:
            out.append(rtp(seq, ssrc=0xCAFE, csrcs=(1, 2)[: i % 3], padding=i % 5 * 3,
                           extension=one_byte_elements({1: b"\x90"}) if i % 7 == 0 else None,
                           payload=rng.randbytes(rng.randrange(0, 300))))
    return out


@pytest.mark.parametrize("mine,theirs,tag,trailer,key_len,salt_len", PROFILES)
def test_libsrtp_reads_what_we_protect_across_a_rollover(mine, theirs, tag, trailer, key_len, salt_len):
    sender, receiver = ours(mine, key_len, salt_len), libsrtp(theirs, key_len, salt_len, inbound=True)
    for packet in packets(random.Random(1), 6000, first_seq=64000):
        protected = sender.protect(packet)
        assert len(protected) == len(packet) + tag and protected[:12] == packet[:12]
        assert receiver.unprotect(protected) == packet
    assert sender.streams == 2


@pytest.mark.parametrize("mine,theirs,tag,trailer,key_len,salt_len", PROFILES)
def test_we_read_what_libsrtp_protects_across_a_rollover_and_reordered(mine, theirs, tag, trailer, key_len,
                                                                         salt_len):
    sender, receiver = libsrtp(theirs, key_len, salt_len, inbound=False), ours(mine, key_len, salt_len)
    sent = [(packet, sender.protect(packet)) for packet in packets(random.Random(2), 6000, first_seq=63000)]
    rng = random.Random(3)
    for at in range(0, len(sent) - 20, 20):  # each run of 20 shuffled: late packets inside the window
        window = sent[at:at + 20]
        rng.shuffle(window)
        sent[at:at + 20] = window
    for packet, protected in sent:
        assert receiver.unprotect(protected) == packet
    assert receiver.streams == 2


@pytest.mark.parametrize("mine,theirs,tag,trailer,key_len,salt_len", PROFILES)
def test_srtcp_both_ways(mine, theirs, tag, trailer, key_len, salt_len):
    mine_out, mine_in = ours(mine, key_len, salt_len), ours(mine, key_len, salt_len)
    theirs_out = libsrtp(theirs, key_len, salt_len, inbound=False)
    theirs_in = libsrtp(theirs, key_len, salt_len, inbound=True)
    for compound in compounds() * 200:
        protected = mine_out.protect_rtcp(compound)
        assert len(protected) == len(compound) + trailer
        assert protected[:8] == compound[:8] and protected[8:len(compound)] != compound[8:]
        assert theirs_in.unprotect_rtcp(protected) == compound
        assert mine_in.unprotect_rtcp(theirs_out.protect_rtcp(compound)) == compound


def test_a_replay_or_a_packet_behind_the_window_is_refused_and_a_late_one_inside_is_taken():
    sender = cm80()
    sent = [sender.protect(rtp(seq)) for seq in range(300)]
    receiver = cm80()
    for packet in sent[150:]:
        receiver.unprotect(packet)
    with pytest.raises(native.SrtpError, match="replayed"):
        receiver.unprotect(sent[299])
    with pytest.raises(native.SrtpError, match="behind the replay window"):
        receiver.unprotect(sent[100])  # 199 behind the highest: past the 128-packet window
    late = cm80()
    for packet in sent[:10] + sent[20:100]:
        late.unprotect(packet)
    assert late.unprotect(sent[15]) == rtp(15)  # 84 behind, never seen: inside the window
    with pytest.raises(native.SrtpError, match="replayed"):
        late.unprotect(sent[15])


def test_protect_never_covers_two_packets_with_one_keystream():
    sender = cm80()
    sender.protect(rtp(7, payload=b"first"))
    with pytest.raises(native.SrtpError, match="replayed"):
        sender.protect(rtp(7, payload=b"second"))


@pytest.mark.parametrize("mine,theirs,tag,trailer,key_len,salt_len", PROFILES)
def test_a_tampered_or_foreign_packet_fails_authentication_and_leaves_no_state(mine, theirs, tag, trailer, key_len,
                                                                              salt_len):
    protected = ours(mine, key_len, salt_len).protect(rtp(1))
    receiver = ours(mine, key_len, salt_len)
    for at in (1, 5, 9, 12, len(protected) - tag - 1, len(protected) - 1):  # header, payload, tag
        broken = bytearray(protected)
        broken[at] ^= 0x04
        with pytest.raises(native.SrtpError, match="authentication failed"):
            receiver.unprotect(bytes(broken))
    stranger = ours(mine, key_len, salt_len, key=bytes(32))
    with pytest.raises(native.SrtpError, match="authentication failed"):
        stranger.unprotect(protected)
    rtcp_protected = ours(mine, key_len, salt_len).protect_rtcp(compounds()[0])
    with pytest.raises(native.SrtpError, match="authentication failed"):
        receiver.unprotect_rtcp(rtcp_protected[:9] + bytes([rtcp_protected[9] ^ 1]) + rtcp_protected[10:])
    assert receiver.streams == 0 and stranger.streams == 0
    assert receiver.unprotect(protected) == rtp(1) and receiver.streams == 1


def test_what_cannot_be_srtp_is_malformed_and_bad_keys_are_refused():
    session = cm80()
    for datagram in (b"", b"\x80", bytes(21), rtp(1)[:11], rtp(1, csrcs=(1, 2, 3))[:20] + bytes(10),
                     rtp(1, extension=(0xBEDE, bytes(8)))[:14] + b"\x00\x09" + bytes(20)):
        with pytest.raises(native.SrtpError, match="malformed"):
            session.unprotect(datagram)
        with pytest.raises(native.SrtpError, match="malformed"):
            session.unprotect_rtcp(datagram[:21])
    with pytest.raises(native.SrtpError, match="malformed"):
        session.protect(b"\x90" + bytes(13))  # an extension header cut off
    with pytest.raises(ValueError, match="16-byte master key and a 14-byte salt"):
        native.SrtpSession(native.AES_CM_128_HMAC_SHA1_80, KEY[:15], SALT)
    with pytest.raises(ValueError, match="32-byte master key and a 12-byte salt"):
        native.SrtpSession(native.AEAD_AES_256_GCM, KEY[:16], SALT[:12])
    with pytest.raises(ValueError, match="unknown SRTP profile"):
        native.SrtpSession(99, KEY[:16], SALT)
    assert session.streams == 0
