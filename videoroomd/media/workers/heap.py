"""Handing a worker's free heap back to the kernel once start-up is done.

Python returns a pymalloc arena to the C allocator only when every object in
it is gone, and glibc's malloc keeps what it was given back in its heap until
``malloc_trim`` returns the free pages to the kernel. Importing leaves such
pages behind (about 0.5 MiB of an idle worker). Trimming again when a room's
last call ended gave nothing measurable (docs/benchmarks.md, "Where the memory
goes now"): what a room leaves behind is not free heap.
"""

from __future__ import annotations

import ctypes
import gc

try:
    _trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):  # not glibc: the allocator keeps what it keeps
    _trim = None


def give_back_free_memory() -> None:
    """Collect unreachable cycles, then return glibc's free heap pages to the kernel (a no-op elsewhere)."""
    gc.collect()
    if _trim is not None:
        _trim(0)
