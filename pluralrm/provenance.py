"""Which code produced an output: the git commit and whether the working tree differed from it.

Results files (``experiments/results/*.json``, ``benchmarks/results/*.json``) record this so a
reader can check out exactly the code behind a figure, and see when it came from uncommitted
changes (``"dirty": true``) and so cannot be reproduced from any commit.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def provenance(repo: str | Path = REPO, ignore: tuple[str, ...] = ("experiments/results", "benchmarks/results")) -> dict[str, Any]:
    """``{"commit": full 40-hex HEAD or None, "dirty": bool or None}`` of the checkout at ``repo``.

    ``dirty`` is True when a tracked or untracked (not ignored) file outside ``ignore`` differs
    from HEAD: outputs being rewritten by the run itself do not make it dirty. Both are None
    outside a git checkout (an installed package).
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--", ".", *(f":!{p}" for p in ignore))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}
