"""SRTP alone, the compiled module against libsrtp: ``python -m bench.srtp [--packets 200000] [--rounds 3]``.

Protects and unprotects the same RTP packets (a VP8-sized one of 1100
payload bytes with the extensions a browser sends, and an Opus-sized one of
80) with :mod:`videoroomd.media.dataplane._native` (OpenSSL's EVP, reached
at run time) and with pylibsrtp (libsrtp, the build aiortc uses), with
AES_CM_128_HMAC_SHA1_80 and with AEAD_AES_128_GCM, and prints the CPU time per packet of each call
from Python, the call's own overhead included. Each figure is the best of
``--rounds`` runs (the least disturbed by other work on the machine).
"""

from __future__ import annotations

import argparse
import random
import time

import pylibsrtp

from testsupport.rtp_datagrams import one_byte_elements, rtp
from videoroomd.media.dataplane.native_module import load

KEY, SALT = bytes(range(16)), bytes(range(16, 30))
PROFILES = [("AES_CM_128_HMAC_SHA1_80", 14), ("AEAD_AES_128_GCM", 12)]  # name, salt length (key: 16)


def packets(count: int, payload: int) -> list[bytes]:
    rng = random.Random(payload)
    body = rng.randbytes(payload)
    ext = one_byte_elements({1: b"0", 3: b"\x01\x02\x03"})
    return [rtp(seq, extension=ext, timestamp=seq * 3000, payload=body) for seq in range(count)]


def per_packet_us(call, items: list[bytes]) -> float:
    start = time.process_time()
    for item in items:
        call(item)
    return (time.process_time() - start) / len(items) * 1e6


def sessions(native, profile: str, salt_len: int):
    """(name, a protecting session's maker, an unprotecting one's) for each implementation."""
    number = getattr(native, profile)  # the same number in libsrtp (RFC 5764's registry)

    def ours():
        return native.SrtpSession(number, KEY, SALT[:salt_len])

    def theirs(kind):
        return pylibsrtp.Session(pylibsrtp.Policy(key=KEY + SALT[:salt_len], ssrc_type=kind, srtp_profile=number))

    yield "native (OpenSSL EVP)", ours, ours
    yield ("pylibsrtp (libsrtp)", lambda: theirs(pylibsrtp.Policy.SSRC_ANY_OUTBOUND),
           lambda: theirs(pylibsrtp.Policy.SSRC_ANY_INBOUND))


def measure(native, profile: str, salt_len: int, count: int, payload: int, rounds: int):
    """[(implementation, protect µs, unprotect µs)], each the best of ``rounds``."""
    plain = packets(count, payload)
    rows = []
    for name, outbound, inbound in sessions(native, profile, salt_len):
        protect, unprotect = [], []
        for _ in range(rounds):
            sender, receiver = outbound(), inbound()
            protect.append(per_packet_us(sender.protect, plain))
            maker = outbound()
            secured = [maker.protect(p) for p in plain]
            unprotect.append(per_packet_us(receiver.unprotect, secured))
        rows.append((name, min(protect), min(unprotect)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    native = load()
    print("| profile | payload | implementation | protect µs | unprotect µs |")
    print("|---|---|---|---:|---:|")
    for profile, salt_len in PROFILES:
        for payload in (1100, 80):
            for name, protect, unprotect in measure(native, profile, salt_len, args.packets, payload, args.rounds):
                print(f"| {profile} | {payload} B | {name} | {protect:.2f} | {unprotect:.2f} |", flush=True)


if __name__ == "__main__":
    main()
