"""Self-signed ECDSA P-256 certificates, usable for DTLS (WebRTC) and for TLS (https)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .pem import sdp_fingerprint


class CertWriteError(Exception):
    """An output file exists (without --force) or cannot be written; the message says which."""


@dataclass(frozen=True)
class GeneratedCert:
    cert_path: Path
    key_path: Path
    fingerprint: str  # "sha-256 AB:CD:…"
    not_after: datetime.datetime


def _subject_alt_names(cn: str, extra: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for entry in (cn, "localhost", "127.0.0.1", "::1", *extra):
        try:
            general: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(entry))
        except ValueError:
            general = x509.DNSName(entry)
        if general not in names:
            names.append(general)
    return names


def build(cn: str, days: int, extra_names: tuple[str, ...] = ()) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh key and a certificate for it, valid from an hour ago for ``days`` days (pure)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(cn, extra_names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise CertWriteError(f"{path} already exists; use --force to overwrite it") from None
    except OSError as error:
        raise CertWriteError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), mode)  # also when --force reuses a file with looser mode
        file.write(data)


def generate(cert_path: Path, key_path: Path, *, cn: str, days: int, force: bool = False,
             extra_names: tuple[str, ...] = ()) -> GeneratedCert:
    """Write a new certificate (0644) and its key (0600); raises CertWriteError."""
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise CertWriteError(f"{path} already exists; use --force to overwrite it")
    certificate, key = build(cn, days, extra_names)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(key_path, key_pem, 0o600, force)
    _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644, force)
    return GeneratedCert(cert_path, key_path, sdp_fingerprint(certificate), certificate.not_valid_after_utc)
