"""The compiled data plane's module (``_native``, built from ``csrc/`` by setup.py): loading it, and choosing a plane.

``_native`` holds the parts of the compiled plane that exist so far: SRTP
and SRTCP over OpenSSL's libcrypto (opened at run time), the parsers of
untrusted datagrams (RFC 7983 demultiplexing, RTP headers and extensions,
RTCP compounds), ``Port`` (a media socket's batched reading and writing, used by
the worker for each direct connection), and the forwarding core behind
:class:`.native_plane.NativeDataPlane` (``Plane``), each room's plane in the
worker with ``data_plane = "native"``. :func:`load` answers the module or says why it cannot;
:func:`choose` turns ``[media] data_plane`` into the plane that runs.

Imports nothing of the package outside this folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType


class NativeUnavailable(RuntimeError):
    """The compiled module is missing or cannot work here; the message says why and what to do."""


def load() -> ModuleType:
    """Return the ``_native`` module. Raises NativeUnavailable when it is not built or finds no libcrypto."""
    try:
        from . import _native  # type: ignore[attr-defined]
    except ImportError as error:
        raise NativeUnavailable(
            f"the compiled data plane is not built ({error}); reinstall the package with `pip install .`,"
            " which needs gcc and the Python headers"
        ) from None
    why = _native.crypto_error()
    if why:
        raise NativeUnavailable(f"the compiled data plane cannot reach OpenSSL: {why}")
    return _native


@dataclass(frozen=True)
class PlaneChoice:
    """The plane that runs for a requested ``[media] data_plane``, and why when they differ."""

    requested: str
    runs: str
    note: str | None = None


def choose(requested: str) -> PlaneChoice:
    """The plane to run for ``requested`` ("python" or "native"). Raises NativeUnavailable for a native plane
    whose module does not load, so that the daemon refuses to start rather than fail mid-call."""
    if requested == "python":
        return PlaneChoice(requested, "python")
    load()
    return PlaneChoice(
        requested,
        "native",
        "the native module reads each direct connection's media socket (batched I/O, source check, SRTP) and"
        " forwards (rewrite, retransmissions, SRTP protect, send); a TURN-relayed subscriber's packets are"
        " passed on to its relay by the worker's loop",
    )
