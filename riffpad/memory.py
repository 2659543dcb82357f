"""Give freed heap memory back to the system (glibc), so a long session's RSS stays flat.

Every clip of a jam allocates a few buffers of about a megabyte (audio, image, encoded
files) on whichever thread made it. glibc raises its mmap threshold after the first such
buffers are freed, so later ones come from the per-thread heaps, whose free pages it keeps:
RSS creeps up and wanders by tens of MB over a long jam although nothing is live (the soak
benchmark's tracemalloc figures stay flat). ``malloc_trim(0)`` returns those free pages;
it costs well under a millisecond and runs once per take.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def _malloc_trim():
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
