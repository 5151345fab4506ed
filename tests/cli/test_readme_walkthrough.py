"""The README's "Using it" section runs as written.

The bash block is run line by line in a fresh directory (with the repository's ``experiments/``
linked in and a ``.venv/bin/activate`` that puts this checkout's ``pluralrm`` on PATH), with
fewer comparisons and training steps (``PLURALRM_WALKTHROUGH_STEPS``, default 30; with
``PLURALRM_WALKTHROUGH_FULL=1`` as written, to time it) and a free port; then the Python block runs in the same directory. A fast test checks that every
``pluralrm`` command of the block parses with the current CLI.

The short run is not killed (``timeout 900``), so its resume line meets a finished run, which
must exit 0; ``PLURALRM_WALKTHROUGH_FULL=1`` kills and resumes as written. Until ``pluralrm
train --resume RUN_DIR`` exists (the train CLI's help names RUN_DIR), the resume line is left
out.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = int(os.environ.get("PLURALRM_WALKTHROUGH_STEPS", "30"))
COMPARISONS = 3000  # the "3,000 comparisons": calibrate must still say something
FULL = os.environ.get("PLURALRM_WALKTHROUGH_FULL") == "1"  # run it exactly as written (for timing)


def section_blocks(language: str) -> list[str]:
    """The ``language`` code blocks of the README's "Using it" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Using it")
    end = text.find("\n## ", start + 1)
    return re.findall(rf"```{language}\n(.*?)```", text[start:end if end > 0 else None], re.S)


def commands(block: str) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def resume_supported() -> bool:
    from pluralrm.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    return "RUN_DIR" in train.format_help()


def test_every_pluralrm_command_of_the_walkthrough_parses():
    from pluralrm.cli import build_parser

    parser = build_parser()
    (block,) = section_blocks("bash")
    seen = set()
    for line in commands(block):
        for part in re.split(r"\|\||&&|\||&|;", line.split("  #")[0]):
            words = shlex.split(part, comments=True)
            if "pluralrm" not in words:
                continue
            argv = words[words.index("pluralrm") + 1:]
            if argv[:2] == ["train", "--resume"] and not resume_supported():
                continue  # the trainloop branch's syntax
            parser.parse_args(argv)  # SystemExit(2) on a flag the CLI does not have
            seen.add(argv[0])
    assert seen >= {"simulate", "data", "train", "score", "serve", "calibrate", "explain"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def walkthrough_script(port: int) -> str:
    """The bash block as the test runs it (fewer comparisons and steps, a free port)."""
    (block,) = section_blocks("bash")
    script = block.replace("8000", str(port))
    if not FULL:
        script = script.replace("--comparisons 12000", f"--comparisons {COMPARISONS}")
        script = re.sub(r"train\.steps=\d+", f"train.steps={STEPS}", script)
    if not FULL:
        # the short run must not be killed at a load-dependent moment (before its run directory
        # exists, say): it finishes, and the resume line then meets a finished run
        script = script.replace("timeout 60 pluralrm train", "timeout 900 pluralrm train")
    if not resume_supported():
        script = script.replace("timeout 60 pluralrm train", "pluralrm train")
        script = re.sub(r"^pluralrm train --resume .*$", ": resume needs pluralrm train --resume RUN_DIR", script,
                        flags=re.M)
    return script


def _workspace(tmp_path: Path) -> dict[str, str]:
    """``tmp_path`` set up as a checkout after ``make demo``: experiments/ and an activatable
    .venv whose ``pluralrm`` is this checkout's."""
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    launcher = bin_dir / "pluralrm"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pluralrm "$@"\n')
    launcher.chmod(0o755)
    (bin_dir / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("VIRTUAL_ENV", None)
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Runs in its own process group, killed whole on timeout (the background server too)."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"timed out after {timeout} s:\n{out[-6000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written(tmp_path):
    env = _workspace(tmp_path)
    start = time.perf_counter()
    result = _run(["bash", "-e", "-x", "-c", walkthrough_script(_free_port())], tmp_path, env, timeout=3000 if FULL else 1500)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-8000:]
    out = result.stdout
    for path in ("society/data.parquet", "splits/test.parquet", "candidates.jsonl", "scores.parquet",
                 "report/report.html", "runs/society/model.json", "runs/v/model.json"):
        assert (tmp_path / path).exists(), path
    assert "Traceback" not in out, out[-8000:]
    assert '"probabilities"' in out or '"p_a_over_b"' in out or "country=" in out  # the /compare answer
    assert "alpha (interval) over all votes" in out and "largest between-group gaps" in out
    assert "honesty" in out and "value_0" not in out  # explain names the society's values
    print(f"walk-through: {elapsed:.0f} s " + ("as written" if FULL else f"with {STEPS} steps, {COMPARISONS} comparisons"))

    (snippet,) = section_blocks("python")
    if not FULL:
        snippet = snippet.replace('"train.steps=300"', f'"train.steps={STEPS}"')
    start = time.perf_counter()
    result = _run([sys.executable, "-c", snippet], tmp_path, env, timeout=900)
    print(f"python snippet: {time.perf_counter() - start:.0f} s")
    assert result.returncode == 0, result.stdout[-8000:]
    assert re.search(r"\{'country=\w+,language=\w+': 0\.\d+", result.stdout), result.stdout[-3000:]
