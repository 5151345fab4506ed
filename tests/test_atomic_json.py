"""pluralrm.atomic.write_json_atomic: the one atomic JSON writer (run_checkpoint re-exports it)."""
import json

import pytest

from pluralrm.atomic import write_json_atomic
from pluralrm.models import run_checkpoint


def test_writes_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "best.json"
    write_json_atomic(path, {"step": 1})
    write_json_atomic(path, {"step": 2})
    assert json.loads(path.read_text()) == {"step": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["best.json"]
    assert run_checkpoint.write_json_atomic is write_json_atomic


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"ok": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})  # not JSON-serialisable, midway through the dump
    assert json.loads(path.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
