"""The SRTP master keys of a DTLS transport aiortc 1.16 connected (RFC 5764 section 4.2), for our own SRTP.

aiortc derives them once, inside ``RTCDtlsTransport._setup_srtp``, and hands them to
libsrtp without keeping them. The keying material exporter of the DTLS connection
answers the same bytes whenever asked after the handshake, so they are derived here
again, the same way: ``EXTRACTOR-dtls_srtp``, client key, server key, client salt,
server salt; the DTLS server receives with the client's. Reads the transport's
pyOpenSSL connection, its role and the profile OpenSSL selected.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.rtcdtlstransport import State as DtlsState

# OpenSSL's names of the profiles (RFC 5764, RFC 7714) -> the compiled module's numbers (RFC 5764's
# registry values, as _native.AES_CM_128_HMAC_SHA1_80 etc.), master key and salt lengths.
PROFILES = {
    b"SRTP_AES128_CM_SHA1_80": (1, 16, 14),
    b"SRTP_AES128_CM_SHA1_32": (2, 16, 14),
    b"SRTP_AEAD_AES_128_GCM": (7, 16, 12),
    b"SRTP_AEAD_AES_256_GCM": (8, 32, 12),
}
EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"


@dataclass(frozen=True)
class SrtpKeys:
    """One connection's SRTP master keys and salts, each way, and the negotiated profile's number."""

    profile: int
    rx_key: bytes
    rx_salt: bytes
    tx_key: bytes
    tx_salt: bytes

    def __repr__(self) -> str:  # never in a log
        return f"SrtpKeys(profile={self.profile})"


class NoSrtpKeys(Exception):
    """The transport has no keys to give: not connected, or a profile the compiled SRTP does not do."""


def srtp_keys(dtls) -> SrtpKeys:
    """The master keys of ``dtls`` (an ``RTCDtlsTransport``) once it is connected. Raises NoSrtpKeys
    when it is not connected or negotiated a profile we do not know."""
    if dtls._state is not DtlsState.CONNECTED:
        raise NoSrtpKeys(f"the DTLS transport is {dtls._state.name.lower()}, not connected")
    ssl = dtls._ssl
    name = ssl.get_selected_srtp_profile()
    if name not in PROFILES:
        raise NoSrtpKeys(f"DTLS negotiated the SRTP profile {name!r}, which the compiled SRTP does not do")
    profile, key_len, salt_len = PROFILES[name]
    material = ssl.export_keying_material(EXPORTER_LABEL, 2 * (key_len + salt_len))
    client_key, server_key = material[:key_len], material[key_len:2 * key_len]
    client_salt = material[2 * key_len:2 * key_len + salt_len]
    server_salt = material[2 * key_len + salt_len:]
    if dtls._role == "server":
        return SrtpKeys(profile, client_key, client_salt, server_key, server_salt)
    return SrtpKeys(profile, server_key, server_salt, client_key, client_salt)
