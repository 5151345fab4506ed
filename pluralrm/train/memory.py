"""Handing pages back to the OS during a long epoch (Linux; elsewhere these do nothing).

A memory-mapped training table (``datasets`` keeps its Arrow files mapped) is read at random
rows, batch after batch: every page of text touched stays mapped into the process, and each
page fault maps its neighbours too (fault-around, 64 KB: one batch of 4,096 random rows mapped
90 % of a 1M-comparison file), so after one epoch over 10M comparisons the process's resident
set holds most of the file (4.9 GB there),
although the kernel could drop those pages at any time. :func:`release_mapped_pages` tells the
kernel (``madvise(MADV_DONTNEED)``) that the process no longer needs the pages of the given
read-only file mappings: they leave its resident set, stay in the page cache, and a later read
maps them again (a minor fault). Nothing is lost: the file is the data. Anonymous memory is
never touched; only mappings of the named files, and only read-only ones.

:func:`trim_heap` asks glibc to return freed heap pages (``malloc_trim(0)``): the batch thread
allocates and frees tens of MB of strings and arrays per batch, which otherwise stay resident.
"""
from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable

MADV_DONTNEED = 4


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


def mapped_files(buffers_of: Iterable) -> set[str]:
    """The files whose read-only mappings hold any of the given pyarrow arrays' buffers
    (chunks of a memory-mapped table); empty for in-memory arrays."""
    addresses = []
    for array in buffers_of:
        for chunk in getattr(array, "chunks", [array]):
            addresses.extend(b.address for b in chunk.buffers() if b is not None and b.size)
    maps = [(s, e, path) for s, e, perms, path in _maps() if "w" not in perms]
    return {path for a in addresses for s, e, path in maps if s <= a < e}


def release_mapped_pages(paths: set[str]) -> int:
    """Drops this process's resident pages of the read-only mappings of ``paths``; returns the
    bytes of mappings advised (0 where unsupported)."""
    if not paths or not sys.platform.startswith("linux"):
        return 0
    libc = _libc()
    if libc is None:
        return 0
    done = 0
    for start, end, perms, path in _maps():
        if path in paths and "w" not in perms:
            if libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_DONTNEED) == 0:
                done += end - start
    return done


def trim_heap() -> None:
    """Returns free glibc heap pages to the OS (no-op without glibc)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _libc():
    if os.name != "posix":
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


__all__ = ["mapped_files", "release_mapped_pages", "trim_heap"]
