"""Read PEM certificates and keys, with errors a person can act on."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization


class PemError(Exception):
    """A certificate or key file that cannot be used; the message says which and why."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PemError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise PemError(f"{what} file {path} is a directory") from None
    except PermissionError:
        raise PemError(f"{what} file {path} cannot be read (permission denied)") from None
    except OSError as error:
        raise PemError(f"{what} file {path} cannot be read ({error.strerror})") from None


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate in the PEM file at ``path``; raises PemError."""
    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PemError(f"{path} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----')") from None


def load_private_key(path: Path):
    """The unencrypted private key in the PEM file at ``path``; raises PemError."""
    data = _read(path, "key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PemError(f"{path} holds an encrypted key; the daemon needs it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise PemError(f"{path} holds no PEM private key (expected '-----BEGIN PRIVATE KEY-----')") from None


def key_matches(certificate: x509.Certificate, private_key) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return certificate.public_key().public_bytes(der, spki) == private_key.public_key().public_bytes(der, spki)


def sdp_fingerprint(certificate: x509.Certificate) -> str:
    """The certificate's fingerprint as SDP writes it: ``sha-256 AB:CD:…``."""
    digest = certificate.fingerprint(hashes.SHA256())
    return "sha-256 " + ":".join(f"{byte:02X}" for byte in digest)
