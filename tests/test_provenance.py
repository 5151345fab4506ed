"""pluralrm.provenance: the exact commit and a dirty flag that ignores the results being written."""
import re
import subprocess

from pluralrm.provenance import provenance


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_commit_and_dirty_flag(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "experiments" / "results").mkdir(parents=True)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert provenance(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "experiments" / "results" / "study.json").write_text("{}")  # the output itself: not dirty
    assert provenance(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance(tmp_path) == {"commit": head, "dirty": True}
    assert re.fullmatch(r"[0-9a-f]{40}", head)


def test_outside_a_checkout(tmp_path):
    assert provenance(tmp_path / "nowhere") == {"commit": None, "dirty": None}
