"""Handing mapped pages and freed heap back to the OS (pluralrm.train.memory)."""
from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pytest

from pluralrm.train.memory import MappedPages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")


def _resident_kib(path: str) -> int:
    """Resident KiB of this process's mappings of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
                inside = len(head) >= 6 and head[5] == path
            elif inside and head and head[0] == "Rss:":
                total += int(head[1])
    return total


def test_release_drops_the_pages_of_a_mapped_table_and_keeps_its_data(tmp_path):
    path = str(tmp_path / "texts.arrow")
    texts = [f"text {i} " + "x" * (i % 300) for i in range(60_000)]  # ~10 MB of strings
    table = pa.table({"text": texts})
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=10_000)
    column = pa.ipc.open_file(pa.memory_map(path)).read_all().column("text")
    pages = MappedPages(column)
    assert pages and len(pages.ranges) == column.num_chunks and all(pages.ranges)
    assert column.to_pylist() == texts  # every page read: resident
    before = _resident_kib(path)
    assert before > 5_000
    pages.release()
    assert _resident_kib(path) < before / 10
    assert column.to_pylist() == texts  # read again from the file
    pages.release(0)  # one chunk only: the others stay resident
    assert 0 < _resident_kib(path) < before


def test_row_texts_hand_each_chunk_back_after_a_gather(tmp_path):
    from pluralrm.train.batches import RowTexts

    path = str(tmp_path / "texts.arrow")
    texts = [f"text {i} " + "y" * (i % 500) for i in range(80_000)]
    table = pa.table({"text": texts})
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=8_000)
    column = pa.ipc.open_file(pa.memory_map(path)).read_all().column("text")
    rows = RowTexts(column)
    picked = np.random.default_rng(0).choice(len(texts), 2_000, replace=False)
    assert rows.take(picked).to_pylist() == [texts[i] for i in picked]
    assert _resident_kib(path) < 1_000  # every chunk handed back: nothing of the ~20 MB file stays


def test_in_memory_arrays_are_never_advised():
    column = pa.chunked_array([pa.array(["a", "b" * 5000]), pa.array(["c"] * 1000)])
    numbers = pa.array(np.arange(100_000))
    assert not MappedPages(column) and not MappedPages(numbers)
    MappedPages(column).release()  # nothing to advise: no-op
