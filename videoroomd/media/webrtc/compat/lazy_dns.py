"""dnspython loaded on first use in a media worker and the daemon, not when aioice is imported.

aioice 0.13 imports its mDNS module, and with it 40-odd modules of dnspython
(and, through ``dns._features``, importlib.metadata with email and zipfile),
at import time: about 4 MiB of a worker's resident memory. It needs them only
to resolve a remote candidate whose address is an mDNS name (``….local``) or
to announce one of ours, which a worker does only when such a candidate comes.

:func:`install` puts a finder ahead of the others on ``sys.meta_path`` that
loads ``dns`` and each ``dns.*`` module with :class:`importlib.util.LazyLoader`:
the module object exists at once, and its code runs when one of its
attributes is first read. ``aioice.mdns`` reads a few at import time (the
record classes), which load those modules alone. Like :mod:`.codec_free`
this changes the imports of the whole process: only the worker process's
entry point and ``videoroomd serve`` (where nothing imported dnspython yet)
call it, before aioice is imported.

Imports the standard library only.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["install"]

PACKAGE = "dns"


class _LazyFinder:
    """Finds ``dns`` and ``dns.*`` as the other finders would, and makes their loading lazy.

    A meta path finder by its method: importlib.abc's base class would import
    importlib.resources, tempfile, shutil, bz2 and lzma (about 2 MiB) into the worker."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PACKAGE and not fullname.startswith(PACKAGE + "."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Make every later import of ``dns`` and its modules lazy in this process; call before
    aiortc (and so aioice) is imported. Raises RuntimeError when dnspython is already imported."""
    if any(isinstance(finder, _LazyFinder) for finder in sys.meta_path):
        return
    if PACKAGE in sys.modules:
        raise RuntimeError("lazy_dns.install() must come before importing dns (aioice imports it)")
    sys.meta_path.insert(0, _LazyFinder())
