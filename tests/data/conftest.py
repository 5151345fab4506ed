"""Shared builders for the data tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pluralrm.data.io import load

ROWS = [
    {"prompt": "p1", "chosen": "a", "rejected": "b", "label": 1.0, "annotator_id": "u1", "weight": 1.0,
     "item_id": "i1", "country": "NG", "language": "yo"},
    {"prompt": "p1", "chosen": "b", "rejected": "a", "label": 0.5, "annotator_id": "u2", "weight": 2.0,
     "item_id": "i1", "country": "US", "language": "en"},
    {"prompt": "p2 with, a comma", "chosen": "line one\nline two", "rejected": "c \"quoted\"", "label": 0.25,
     "annotator_id": "u1", "weight": 0.0, "item_id": "i2", "country": "", "language": "en"},
    {"prompt": "p3 ünïcödé ✓", "chosen": "日本語", "rejected": "العربية", "label": 0.0, "annotator_id": "",
     "weight": 1.5, "item_id": "i3", "country": "IN", "language": "hi"},
    {"prompt": "p4", "chosen": "  padded  ", "rejected": "x", "label": 1.0, "annotator_id": "u3",
     "weight": 1.0, "item_id": "i4", "country": "NG", "language": ""},
]


@pytest.fixture
def rows() -> list[dict]:
    """Five valid rows exercising every core column, item_id and two group attributes."""
    return [dict(r) for r in ROWS]


@pytest.fixture
def dataset(rows):
    return load(rows)


@pytest.fixture
def write_jsonl():
    def write(path: Path, rows: list, raw_lines: dict[int, str] | None = None) -> Path:
        """Rows as JSON Lines; ``raw_lines`` replaces line i (0-based) with a literal string."""
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        for i, text in (raw_lines or {}).items():
            lines[i] = text
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write
