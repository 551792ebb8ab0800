"""A media worker without PyAV: aiortc imported with a stand-in for ``av`` (worker process only).

aiortc 1.16 imports PyAV at import time (``aiortc/__init__`` reaches
``mediastreams``, ``rtp``, ``rtcrtpsender``, ``rtcrtpreceiver`` and every
module of ``aiortc.codecs``, each with ``from av import ...``), and PyAV maps
ffmpeg's libraries with every codec it was built with: libavcodec, libvpx,
libopus, libx264, libx265, SVT-AV1, dav1d, gnutls... About 25 MiB of a worker's
resident memory and a fifth of a second of its start, for code a forwarding
worker never runs: its receivers hand each packet to the data plane instead
of decoding it, and its senders' tracks never yield a frame to encode
(:class:`..forwarding.SlotTrack`), so aiortc never builds an encoder or a
decoder, and neither the rest of the worker.

:func:`install` puts a finder ahead of the others on ``sys.meta_path`` that
answers every import of ``av`` and ``av.*`` with a small module whose every
public name is a stand-in class. The names aiortc binds at import time then
exist; using one (making a frame, a packet, a codec context) raises
:class:`CodecsNotLoaded`, which says why, instead of doing something else
quietly. ``isinstance`` against a stand-in is False, which is what the senders'
checks need for data that is not a frame. This changes the modules of the
whole process, unlike the rest of this package: only the worker process's
entry point (:mod:`videoroomd.media.workers.process`) calls it, before
anything imports aiortc. The daemon, tests and a worker run as a thread keep
the real PyAV.

Imports the standard library only.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types

__all__ = ["CodecsNotLoaded", "install", "installed"]

PACKAGE = "av"


class CodecsNotLoaded(RuntimeError):
    """Something in a forwarding media worker tried to use PyAV, which such a worker never loads."""


def _refuse(what: str) -> CodecsNotLoaded:
    return CodecsNotLoaded(f"{what}: a media worker forwards packets and loads no codecs (PyAV is not imported "
                           "in it; see videoroomd.media.webrtc.compat.codec_free)")


class _StandInType(type):
    """The stand-ins' class: reading a public attribute of one (``CodecContext.create``) is refused too."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise _refuse(f"{cls.__module__}.{cls.__qualname__}.{name}")


class _StandIn(metaclass=_StandInType):
    """What a name of the stand-in ``av`` is: a class that cannot be made or called."""

    def __new__(cls, *args, **kwargs):
        raise _refuse(f"{cls.__module__}.{cls.__qualname__}")


class _StandInError(Exception):
    """What an ``...Error`` name of the stand-in ``av`` is: an exception nothing raises."""


class _StandInModule(types.ModuleType):
    """``av`` or one of its submodules: any public name is a stand-in class, made once."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        base = _StandInError if name.endswith("Error") else _StandIn
        value = type(base)(name, (base,), {"__module__": self.__name__, "__qualname__": name})
        setattr(self, name, value)
        return value


class _Finder:
    """Answers ``av`` and ``av.*`` with :class:`_StandInModule` instances: a meta path finder and
    its loader by their methods (importlib.abc's base classes would import importlib.resources,
    tempfile, shutil, bz2 and lzma into the worker: about 2 MiB it never uses)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PACKAGE and not fullname.startswith(PACKAGE + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []  # a package: its submodules come from this finder too
        return module

    def exec_module(self, module) -> None:
        parent, _, child = module.__name__.rpartition(".")
        if parent:  # `import av.video.frame` then `av.video.frame.X` must find the submodule
            setattr(sys.modules[parent], child, module)


def installed() -> bool:
    """True when this process's ``av`` is the stand-in (or will be, once imported)."""
    return any(isinstance(finder, _Finder) for finder in sys.meta_path)


def install() -> None:
    """Make every later import of ``av`` in this process the stand-in; call before aiortc is imported.

    Raises RuntimeError when PyAV or aiortc is already imported: the real
    libraries would stay mapped, and aiortc would hold the real names.
    """
    if installed():
        return
    loaded = [name for name in ("av", "aiortc") if name in sys.modules]
    if loaded:
        raise RuntimeError(f"codec_free.install() must come before importing {' and '.join(loaded)}")
    sys.meta_path.insert(0, _Finder())
