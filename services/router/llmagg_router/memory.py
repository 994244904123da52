"""Freed memory given back to the system after large request bodies.

A 10-40 MiB body is held several times over while it is read, parsed and sent on (its pieces, the
joined bytes, the parsed text, the upstream's copy). glibc keeps what Python frees of it in its heaps
and arenas (freed pieces in the middle of a heap, an mmap threshold raised by the first large free), so
after a few such requests the router stayed at 2-3 times its size for good. `malloc_trim(0)` hands the
free pages of every arena back; it is called once, shortly after a large request ends (a burst of
them costs two calls), never for the small requests of the hot path. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

LARGE_REQUEST_BYTES = 1024 * 1024  # a request body at least this large is followed by a trim
_SOON_S = 0.05  # the request's frames and buffers are gone by then
_QUIET_S = 1.0  # no large request has ended for this long


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept from rising
TRIM_THRESHOLD_BYTES = 1024 * 1024


def _libc_function(name: str) -> Callable[..., int] | None:
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None


def _malloc_trim() -> Callable[[int], int] | None:
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def keep_allocator_thresholds() -> bool:
    """Fix glibc's mmap and trim thresholds (at their starting values) for the life of the process.

    Left dynamic, the first large block freed raises the mmap threshold to its size (up to 32 MiB) and
    the trim threshold to twice that: from then on a body's blocks come from the heaps, and the top of
    a thread's arena (gRPC's threads receive the bodies) is never given back, since `malloc_trim` trims
    only the main heap's top. Fixed, a large block is mapped and unmapped on its own, and a heap whose
    free top passes 1 MiB shrinks. The same as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_, set from
    inside so every way of starting the router has it. False where the C library has no mallopt."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


class MemoryReleaser:
    def __init__(
        self,
        trim: Callable[[int], int] | None = None,
        threshold_bytes: int = LARGE_REQUEST_BYTES,
        soon_s: float = _SOON_S,
        quiet_s: float = _QUIET_S,
    ) -> None:
        self._trim = trim if trim is not None else _malloc_trim()
        self._threshold = threshold_bytes
        self._soon_s, self._quiet_s = soon_s, quiet_s
        self._soon: asyncio.TimerHandle | None = None
        self._quiet: asyncio.TimerHandle | None = None

    def request_ended(self, body_bytes: int) -> None:
        """A request that held `body_bytes` of body is over: after a large one, give freed memory back soon
        (while others may still be running), and again once large requests have stopped for a while (what
        the ones running at the first trim held)."""
        if body_bytes < self._threshold or self._trim is None:
            return
        loop = asyncio.get_running_loop()
        if self._soon is None:
            self._soon = loop.call_later(self._soon_s, self._release_soon)
        if self._quiet is not None:
            self._quiet.cancel()
        self._quiet = loop.call_later(self._quiet_s, self._release_quiet)

    @property
    def scheduled(self) -> bool:
        return self._soon is not None or self._quiet is not None

    def _release_soon(self) -> None:
        self._soon = None
        self._release()

    def _release_quiet(self) -> None:
        self._quiet = None
        self._release()

    def _release(self) -> None:
        try:
            self._trim(0)
        except Exception:  # an allocator without it: nothing to give back
            log.debug("malloc_trim failed", exc_info=True)
