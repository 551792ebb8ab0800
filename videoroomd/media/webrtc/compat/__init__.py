"""Every reach into aiortc's, aioice's and asyncio's internals, in one place, for the versions it was made for.

The forwarder and the peer connections need more than aiortc's public API:
a receiver that hands each packet on instead of decoding it, a sender whose
packets we write ourselves, the socket of the nominated ICE pair, the ICE
agent's handling of restarts and of unknown addresses. Those reaches live in
this package only (:mod:`.rtp` for aiortc's senders, receivers and DTLS,
:mod:`.simulcast` for accepting a publisher's layers in an answer,
:mod:`.rtcp` for their RTCP reports, :mod:`.remb` for the REMB estimator,
:mod:`.ice` and :mod:`.ice_restart` for aioice, :mod:`.srtp_keys` for the SRTP keys of a DTLS
handshake, :mod:`.native_port` for handing a media socket to the compiled module); each sets attributes of our
own connections' objects, never a class or module. Two change what the
libraries import, for the whole process, and are called only before aiortc is
imported: :mod:`.codec_free` (PyAV's codecs, never used by a forwarding worker,
stay out; the media worker process's entry point alone) and :mod:`.lazy_dns`
(dnspython loads on first use; the worker's entry point and ``videoroomd serve``). They hold for the
versions in REQUIRED, which :func:`check_versions` enforces at start-up.
Imports aiortc, aioice, :mod:`videoroomd.media.dataplane.rtp_packets` (the NTP epoch),
:mod:`videoroomd.media.dataplane.native_module` (the compiled module, for :mod:`.native_port`) and
:mod:`videoroomd.sdp.sections` (the RID header extensions) only.
"""

from __future__ import annotations

# Package -> the release series these reaches were written and tested against.
REQUIRED = {"aiortc": "1.16", "aioice": "0.13"}


class IncompatibleVersions(Exception):
    """An installed aiortc or aioice is not the series this package reaches into; the text says which."""


def installed(package: str) -> str | None:
    # Imported here, not above: a media worker imports this package and never asks, and
    # importlib.metadata brings email, csv, zipfile and more (about 2 MiB) into it.
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def check_versions() -> None:
    """Raises IncompatibleVersions naming each package whose installed version is not the one required."""
    wrong = []
    for package, series in REQUIRED.items():
        version = installed(package)
        if version is None or not (version == series or version.startswith(series + ".")):
            wrong.append(f"{package} {version or '(not installed)'}")
    if wrong:
        needed = " and ".join(f"{p} {s}.x" for p, s in REQUIRED.items())
        raise IncompatibleVersions(f"the media engine needs {needed}; installed: {', '.join(wrong)} "
                                   f"(reinstall videoroomd to get the versions it pins)")
