"""pylibsrtp loaded when a connection first needs SRTP, not when aiortc is imported (worker process only).

pylibsrtp's binding carries libsrtp and its own OpenSSL in one 7 MiB shared
library, and its import runs ``srtp_init()`` (libsrtp's cipher self-tests):
about 4.4 MiB of a worker's resident memory before any call. aiortc imports it
at import time and makes a ``Policy`` of each SRTP profile then, to learn which
ones the build supports; it needs SRTP only when a connection's DTLS handshake
is done (``RTCDtlsTransport._setup_srtp``), and an idle worker has none.

:func:`install` puts a small module in ``sys.modules["pylibsrtp"]`` whose
``Policy`` and ``Session`` make the real ones (loading pylibsrtp then), and
imports aiortc's DTLS transport while that module answers the profile probe
itself: the three profiles aiortc offers, which every pylibsrtp build we
install supports (its wheels are built on OpenSSL, so with AES-GCM; the first
real load checks the constants and the profiles, and
``tests/unit/test_lazy_srtp.py`` does too). Any other name (``Error``) loads
the real module and is read from it. Like :mod:`.codec_free` this changes the
imports of the whole process: only the worker process's entry point calls it,
before anything imports aiortc; the daemon, tests and a worker run as a thread
import pylibsrtp as it is.

Imports the standard library only.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types

__all__ = ["PROFILES", "SSRC_TYPES", "install", "loaded"]

PACKAGE = "pylibsrtp"

# libsrtp's srtp_profile_t values (the DTLS-SRTP protection profile numbers of RFC 5764 and 7714).
PROFILES = {
    "SRTP_PROFILE_AES128_CM_SHA1_80": 1,
    "SRTP_PROFILE_AES128_CM_SHA1_32": 2,
    "SRTP_PROFILE_AEAD_AES_128_GCM": 7,
    "SRTP_PROFILE_AEAD_AES_256_GCM": 8,
}
# libsrtp's srtp_ssrc_type_t values.
SSRC_TYPES = {"SSRC_UNDEFINED": 0, "SSRC_SPECIFIC": 1, "SSRC_ANY_INBOUND": 2, "SSRC_ANY_OUTBOUND": 3}
# What aiortc 1.x probes at import and offers in its DTLS handshake.
OFFERED = (1, 7, 8)

_lock = threading.Lock()
_real: types.ModuleType | None = None
_probing = False


class ProfileProbe:
    """What ``Policy(srtp_profile=…)`` makes while aiortc's import probes the profiles: no key, no SRTP."""

    def __init__(self, srtp_profile: int) -> None:
        self.srtp_profile = srtp_profile


def _load() -> types.ModuleType:
    """The real pylibsrtp, imported on first call; raises RuntimeError when it disagrees with the
    values answered before it was loaded."""
    global _real
    with _lock:
        if _real is None:
            stand_in = sys.modules.pop(PACKAGE)
            try:
                real = importlib.import_module(PACKAGE)
            finally:
                sys.modules[PACKAGE] = stand_in  # the stand-in stays what ``import pylibsrtp`` finds
            _check(real)
            _real = real
    return _real


def _check(real: types.ModuleType) -> None:
    for name, value in {**PROFILES, **SSRC_TYPES}.items():
        if getattr(real.Policy, name) != value:
            raise RuntimeError(f"pylibsrtp's Policy.{name} is {getattr(real.Policy, name)}, not {value}: "
                               "update videoroomd.media.webrtc.compat.lazy_srtp")
    for profile in OFFERED:
        real.Policy(srtp_profile=profile)  # raises pylibsrtp.Error for a build without it


def loaded() -> bool:
    """Whether this process has loaded the real pylibsrtp through the stand-in."""
    return _real is not None


class Policy:
    """pylibsrtp's ``Policy``: its constants without loading it; making one makes the real one."""

    def __new__(cls, *args, **kwargs):
        if _probing and not args and set(kwargs) == {"srtp_profile"}:
            if kwargs["srtp_profile"] not in OFFERED:
                raise _ProbeRefused(f"SRTP profile {kwargs['srtp_profile']} is not probed without pylibsrtp")
            return ProfileProbe(kwargs["srtp_profile"])
        return _load().Policy(*args, **kwargs)


for _name, _value in {**PROFILES, **SSRC_TYPES}.items():
    setattr(Policy, _name, _value)


class Session:
    """pylibsrtp's ``Session``: making one loads pylibsrtp and makes the real one."""

    def __new__(cls, *args, **kwargs):
        return _load().Session(*args, **kwargs)


class _ProbeRefused(Exception):
    """A profile probed at import that the stand-in does not answer for (aiortc skips the profile)."""


class _StandInModule(types.ModuleType):
    """``pylibsrtp`` before its first use: ``Policy`` and ``Session`` above, every other name the real one's."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if _probing and name == "Error":
            return _ProbeRefused
        return getattr(_load(), name)


def install() -> None:
    """Put the stand-in in place and import aiortc's DTLS transport under it; call before anything
    imports aiortc. Raises RuntimeError when aiortc or pylibsrtp is already imported."""
    global _probing
    if isinstance(sys.modules.get(PACKAGE), _StandInModule):
        return
    if PACKAGE in sys.modules or "aiortc" in sys.modules:
        raise RuntimeError("lazy_srtp.install() must come before importing pylibsrtp or aiortc")
    module = _StandInModule(PACKAGE, __doc__)
    module.Policy = Policy
    module.Session = Session
    sys.modules[PACKAGE] = module
    _probing = True
    try:
        importlib.import_module("aiortc.rtcdtlstransport")
    finally:
        _probing = False
