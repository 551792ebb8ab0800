"""The compiled media socket (_native.Port, dataplane/csrc/port*.c) on loopback UDP: one read drains what
the socket holds, STUN and DTLS come back unchanged with their source, RTP and RTCP come back decrypted
with the kernel's arrival time, media from a source that is not allowed never reaches SRTP, broken and
replayed SRTP is counted and never raised, and what it sends libsrtp (aiortc's) reads."""

from __future__ import annotations

import os
import random
import socket
import time

import pylibsrtp
import pytest

from testsupport.kernel_stamps import kernel_stamps
from testsupport.rtp_datagrams import browser_rtp, compounds, mutated, receiver_report, rtp
from videoroomd.media.dataplane.native_module import load

native = load()

RX_KEY, RX_SALT = bytes(range(1, 17)), bytes(range(101, 115))
TX_KEY, TX_SALT = bytes(range(31, 47)), bytes(range(131, 145))
P = pylibsrtp.Policy
PROFILES = [
    pytest.param(native.AES_CM_128_HMAC_SHA1_80, P.SRTP_PROFILE_AES128_CM_SHA1_80, 14, id="cm_sha1_80"),
    pytest.param(native.AEAD_AES_128_GCM, P.SRTP_PROFILE_AEAD_AES_128_GCM, 12, id="gcm_128"),
]
STUN = bytes.fromhex("000100002112a442") + bytes(12)  # a binding request's header
DTLS = bytes([22, 0xFE, 0xFD]) + bytes(10) + b"\x00\x03abc"


def udp(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)  # a burst of 150 datagrams is kept whole
    return sock


@pytest.fixture
def sockets():
    made = []

    def make(host: str = "127.0.0.1") -> socket.socket:
        made.append(udp(host))
        return made[-1]

    yield make
    for sock in made:
        sock.close()


def libsrtp(profile: int, key: bytes, salt: bytes, inbound: bool) -> pylibsrtp.Session:
    kind = P.SSRC_ANY_INBOUND if inbound else P.SSRC_ANY_OUTBOUND
    return pylibsrtp.Session(P(key=key + salt, ssrc_type=kind, srtp_profile=profile))


def keyed_port(server: socket.socket, profile: int = native.AES_CM_128_HMAC_SHA1_80, salt_len: int = 14):
    port = native.Port(server.fileno())
    port.set_keys(profile, RX_KEY, RX_SALT[:salt_len], TX_KEY, TX_SALT[:salt_len])
    return port


def read_all(port, expected: int, timeout: float = 2.0):
    """read_batch until ``expected`` datagrams were seen (loopback delivers at once; a busy machine may lag)."""
    signals, media, reads = [], [], 0
    deadline = time.monotonic() + timeout
    while port.counters["datagrams"] < expected and time.monotonic() < deadline:
        got_signals, got_media = port.read_batch()
        signals += got_signals
        media += got_media
        reads += 1
        time.sleep(0.001)
    return signals, media, reads


@pytest.mark.parametrize("profile, theirs, salt_len", PROFILES)
def test_one_read_drains_the_socket_and_sorts_signals_from_decrypted_media(sockets, profile, theirs, salt_len):
    server, client = sockets(), sockets()
    port = keyed_port(server, profile, salt_len)
    assert port.allow(client.getsockname()) is True
    assert port.allow(client.getsockname()) is False  # once is enough
    sender = libsrtp(theirs, RX_KEY, RX_SALT[:salt_len], inbound=False)
    rng = random.Random(7)
    plain_rtp = [browser_rtp(seq, rng) for seq in range(150)]
    plain_rtcp = compounds()
    with kernel_stamps():  # (the kernel stamps on read until its switch, a moment after the first socket asks)
        before = time.time_ns()
        for data in plain_rtp:
            client.sendto(sender.protect(data), server.getsockname())
        for data in plain_rtcp:
            client.sendto(sender.protect_rtcp(data), server.getsockname())
        client.sendto(STUN, server.getsockname())
        client.sendto(DTLS, server.getsockname())
        total = len(plain_rtp) + len(plain_rtcp) + 2
        time.sleep(0.05)
        signals, media = port.read_batch()  # more than one recvmmsg batch (64), all in one call
    assert signals == [(STUN, client.getsockname()), (DTLS, client.getsockname())]
    assert [data for kind, data, _ in media if kind == native.RTP] == plain_rtp
    assert [data for kind, data, _ in media if kind == native.RTCP] == plain_rtcp
    arrivals = [arrival for _, _, arrival in media]
    assert all(before <= arrival <= time.time_ns() for arrival in arrivals)
    # each datagram its own kernel time, in the order they came; two cores' clocks may stamp a
    # neighbour a little earlier, never by a millisecond
    assert all(later - earlier > -1_000_000 for earlier, later in zip(arrivals, arrivals[1:]))
    assert len(set(arrivals)) > len(arrivals) // 2
    counters = port.counters
    assert counters["datagrams"] == total and counters["batches"] == 3
    assert (counters["rtp"], counters["rtcp"], counters["stun"], counters["dtls"]) == (150, len(plain_rtcp), 1, 1)
    assert port.read_batch() == ([], [])


def test_media_from_a_source_not_allowed_never_reaches_srtp(sockets):
    server, client, stranger = sockets(), sockets(), sockets()
    port = keyed_port(server)
    port.allow(client.getsockname())
    sender = libsrtp(P.SRTP_PROFILE_AES128_CM_SHA1_80, RX_KEY, RX_SALT, inbound=False)
    for seq in range(20):
        stranger.sendto(sender.protect(rtp(seq)), server.getsockname())  # valid SRTP, wrong source
        stranger.sendto(rtp(1000 + seq), server.getsockname())           # garbage: no auth failure either
    stranger.sendto(STUN, server.getsockname())  # ICE checks from new addresses still go up
    signals, media, _ = read_all(port, 41)
    assert media == [] and signals == [(STUN, stranger.getsockname())]
    counters = port.counters
    assert counters["unvalidated"] == 40
    assert counters["auth"] == counters["rtp"] == counters["malformed"] == 0
    # Allowed later (the pair was validated): from then on its media is taken; forgotten: dropped again.
    port.allow(stranger.getsockname())
    stranger.sendto(sender.protect(rtp(500)), server.getsockname())
    _, media, _ = read_all(port, 42)
    assert [data for _, data, _ in media] == [rtp(500)]
    assert port.forget(stranger.getsockname()) is True and port.forget(stranger.getsockname()) is False
    stranger.sendto(sender.protect(rtp(501)), server.getsockname())
    _, media, _ = read_all(port, 43)
    assert media == [] and port.counters["unvalidated"] == 41


def test_broken_replayed_and_truncated_srtp_is_counted_never_raised(sockets):
    server, client = sockets(), sockets()
    port = keyed_port(server)
    port.allow(client.getsockname())
    sender = libsrtp(P.SRTP_PROFILE_AES128_CM_SHA1_80, RX_KEY, RX_SALT, inbound=False)
    good = sender.protect(rtp(1, payload=bytes(100)))
    other = sender.protect(rtp(3, payload=bytes(100)))
    tampered = other[:-1] + bytes([other[-1] ^ 1])
    sent = [good, good, tampered, sender.protect_rtcp(receiver_report())]
    fresh = sender.protect(rtp(2, payload=bytes(100)))
    sent += [fresh[:n] for n in range(1, len(fresh))]  # every truncation of a packet not seen yet
    for data in sent:
        client.sendto(data, server.getsockname())
    client.sendto(b"", server.getsockname())
    signals, media, _ = read_all(port, len(sent) + 1)
    assert [kind for kind, _, _ in media] == [native.RTP, native.RTCP]
    counters = port.counters
    assert counters["replay"] == 1
    # The tampered one and the truncations (the 1-byte one and the empty datagram are not even RTP).
    assert counters["auth"] + counters["malformed"] == 1 + len(fresh) - 2
    assert counters["other"] == 2 and signals == []


def test_a_64_kib_datagram_is_read_whole_or_dropped_safely(sockets):
    server, client = sockets(), sockets()
    port = keyed_port(server)
    port.allow(client.getsockname())
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    biggest = 65507  # the most an IPv4 UDP datagram carries
    huge_stun = STUN + bytes(biggest - len(STUN))
    client.sendto(huge_stun, server.getsockname())
    client.sendto(rtp(1, payload=bytes(biggest - 12)), server.getsockname())
    client.sendto(bytes([0x80, 200]) + bytes(biggest - 2), server.getsockname())
    signals, media, _ = read_all(port, 3)
    assert signals == [(huge_stun, client.getsockname())] and media == []
    counters = port.counters
    assert counters["truncated"] == 0 and counters["auth"] + counters["malformed"] == 2


@pytest.mark.parametrize("profile, theirs, salt_len", PROFILES)
def test_what_it_sends_is_protected_for_libsrtp_and_goes_out_in_batches(sockets, profile, theirs, salt_len):
    server, client = sockets(), sockets()
    port = keyed_port(server, profile, salt_len)
    receiver = libsrtp(theirs, TX_KEY, TX_SALT[:salt_len], inbound=True)
    packets = [rtp(seq, ssrc=0xBEEF, payload=bytes([seq & 0xFF]) * 900) for seq in range(100)]
    assert all(port.send(data, client.getsockname()) for data in packets[:70])  # past a full queue: sent then
    assert port.counters["sent"] == 64
    assert all(port.send(data, client.getsockname()) for data in packets[70:])
    assert port.flush() == 36 and port.flush() == 0
    got = []
    deadline = time.monotonic() + 2
    while len(got) < len(packets) and time.monotonic() < deadline:
        try:
            got.append(receiver.unprotect(client.recv(2048)))
        except BlockingIOError:
            time.sleep(0.001)
    assert got == packets
    # Refused, counted, nothing queued: too long for a send slot, not RTP, an address of no family.
    assert port.send(rtp(1, payload=bytes(2100)), client.getsockname()) is False
    assert port.send(b"\x80", client.getsockname()) is False
    with pytest.raises(ValueError, match="no IP address"):
        port.send(rtp(2), ("example.org", 5))
    assert port.counters["send_refused"] == 2 and port.flush() == 0


def test_it_refuses_what_is_no_udp_socket_and_sends_nothing_without_keys(sockets):
    tcp = socket.socket()
    try:
        with pytest.raises(ValueError, match="UDP"):
            native.Port(tcp.fileno())
    finally:
        tcp.close()
    with pytest.raises(ValueError, match="UDP"):
        native.Port(10_000)
    server, client = sockets(), sockets()
    port = native.Port(server.fileno())
    port.allow(client.getsockname())
    with pytest.raises(RuntimeError, match="set_keys"):
        port.send(rtp(1), client.getsockname())
    client.sendto(rtp(1), server.getsockname())
    _, media, _ = read_all(port, 1)
    assert media == [] and port.counters["no_keys"] == 1
    with pytest.raises(ValueError, match="takes 16-byte keys"):
        port.set_keys(native.AES_CM_128_HMAC_SHA1_80, b"short", RX_SALT, TX_KEY, TX_SALT)
    with pytest.raises(TypeError):
        port.allow("127.0.0.1:5")
    with pytest.raises(RuntimeError, match="not initialised"):
        native.Port.__new__(native.Port).read_batch()


def test_ipv6_and_ipv4_mapped_sources_compare_as_the_same_address(sockets):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        server.bind(("::", 0))
    except OSError:
        server.close()
        pytest.skip("cannot bind a dual-stack socket to ::")
    client = sockets()
    port = keyed_port(server)
    port.allow(client.getsockname())  # as plain IPv4: the datagrams come from ::ffff:127.0.0.1
    sender = libsrtp(P.SRTP_PROFILE_AES128_CM_SHA1_80, RX_KEY, RX_SALT, inbound=False)
    client.sendto(sender.protect(rtp(3)), ("127.0.0.1", server.getsockname()[1]))
    client.sendto(STUN, ("127.0.0.1", server.getsockname()[1]))
    signals, media, _ = read_all(port, 2)
    assert [data for _, data, _ in media] == [rtp(3)]
    assert signals[0][1][:2] == ("::ffff:127.0.0.1", client.getsockname()[1])
    assert port.send(rtp(4), client.getsockname()) and port.flush() == 1
    server.close()


def resident_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


@pytest.mark.slow
def test_broken_datagrams_from_allowed_and_other_sources_leave_memory_flat(sockets):
    """The fuzz run of tests/unit/test_native_fuzz.py, through a socket: mutated RTP, RTCP, SRTP, STUN and DTLS
    from an allowed source and a stranger, read in batches; only counters move (and ASan watches under
    .ci/sanitize.sh)."""
    rounds = int(os.environ.get("VIDEOROOMD_FUZZ_ROUNDS", "50000")) * 2  # datagrams
    rng = random.Random(int(os.environ.get("VIDEOROOMD_FUZZ_SEED", "18")))
    server, client, stranger = sockets(), sockets(), sockets()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    port = keyed_port(server)
    port.allow(client.getsockname())
    sender = libsrtp(P.SRTP_PROFILE_AES128_CM_SHA1_80, RX_KEY, RX_SALT, inbound=False)
    base = [browser_rtp(seq, rng) for seq in range(8)] + compounds() + [STUN, DTLS]
    base += [sender.protect(browser_rtp(100 + seq, rng)) for seq in range(8)]
    base += [sender.protect_rtcp(c) for c in compounds()]

    def run(count: int) -> None:
        for index in range(count):
            data = mutated(rng.choice(base), rng)[:65507]
            (stranger if index % 4 == 0 else client).sendto(data, server.getsockname())
            if index % 32 == 31:
                port.read_batch()
                port.send(mutated(rng.choice(base[:8]), rng)[:1800], client.getsockname())
                port.flush()
                while True:
                    try:
                        client.recv(65536)
                    except BlockingIOError:
                        break
        port.read_batch()

    run(rounds // 10)  # warm up: Python's caches, the receive slots' pages
    before = resident_kib()
    run(rounds)
    grown = resident_kib() - before
    counters = port.counters
    assert counters["datagrams"] > rounds // 2 and counters["unvalidated"] > 0
    assert counters["auth"] + counters["malformed"] + counters["replay"] > 0 and counters["sent"] > 0
    if not os.environ.get("VIDEOROOMD_SANITIZED"):
        assert grown < 4096, f"resident memory grew by {grown} KiB over {rounds} datagrams"
