"""Keeping a memory-mapped training table out of the resident set (Linux; elsewhere no-ops).

``datasets`` keeps a large training table memory-mapped (``data.memory_map``), and training
reads it at random rows, batch after batch. Every page read stays mapped into the process, and a
fault maps far more than the page it needs: the kernel maps the page cache's large folios
around it (kernel 6.18 here: taking 10 rows of a 17 MB Arrow chunk mapped 16 MB of it; one
batch of 4,096 random comparisons mapped 4.2 GB of a 4.9 GB file). The resident set then holds
the whole file after one batch, although the kernel may drop those pages at any time.

:class:`MappedPages` finds, per chunk of an Arrow array, the address ranges of its buffers that
lie in read-only file mappings; ``release(i)`` tells the kernel (``madvise(MADV_DONTNEED)``)
that the process no longer needs chunk ``i``'s pages: they leave its resident set, stay in the
page cache, and a later read maps them again (a minor fault; gathering a batch cost the same
12 ms either way). Nothing is lost: the file is the data. Anonymous (heap) memory and writable
mappings are never advised.
"""
from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable

MADV_DONTNEED = 4
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _maps() -> Iterable[tuple[int, int, str, str]]:
    """``(start, end, permissions, path)`` of this process's file-backed mappings."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        out.append((start, end, parts[1], parts[5].removesuffix(" (deleted)")))
    return out


class MappedPages:
    """The pages of a (chunked) Arrow array that lie in read-only file mappings, chunk by chunk.

    ``release(i)`` drops this process's resident pages of chunk ``i``'s buffers (page-aligned,
    clamped to their mapping), ``release()`` those of every chunk; chunks of in-memory arrays
    have no ranges and are never advised (nor is anything where ``madvise`` is unavailable).
    """

    def __init__(self, array):
        maps = [(s, e) for s, e, perms, _ in _maps() if "w" not in perms] if _LIBC is not None else []
        self.ranges: list[list[tuple[int, int]]] = []
        for chunk in getattr(array, "chunks", [array]):
            ranges = []
            for b in chunk.buffers():
                if b is None or not b.size:
                    continue
                for s, e in maps:
                    if s <= b.address < e:
                        start = max(s, b.address & ~(PAGE - 1))
                        stop = min(e, -(-(b.address + b.size) // PAGE) * PAGE)
                        ranges.append((start, stop))
                        break
            self.ranges.append(ranges)

    def __bool__(self) -> bool:
        return any(self.ranges)

    def release(self, chunk: int | None = None) -> None:
        for start, stop in (r for c in ([chunk] if chunk is not None else range(len(self.ranges)))
                            for r in self.ranges[c]):
            _LIBC.madvise(ctypes.c_void_p(start), ctypes.c_size_t(stop - start), MADV_DONTNEED)


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


_LIBC = _libc()


__all__ = ["MappedPages"]
