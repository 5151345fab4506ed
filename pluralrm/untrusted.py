"""Reading directories and metadata files that may not be trustworthy (no JAX, no models).

Shared by every layer that opens a user-supplied directory: a run or model directory
(``pluralrm.models.artefacts``) and a pretrained model directory (``pluralrm.pretrained``,
which the data layer's tokenizer featurizer uses). The checks refuse, with an error naming the
path, a symbolic link leading outside the directory, a special file (FIFO, device: a read that
never ends), and a metadata file larger than it could honestly be (a JSON bomb).
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pluralrm.errors import CheckpointError

MAX_JSON_BYTES = 256 << 20


def check_directory(root: Path, allow_link: Callable[[Path], bool] | None = None) -> None:
    """Refuses symlinks leading outside ``root`` (unless ``allow_link(target)``), broken ones,
    and special files (devices, FIFOs: a read that never ends) anywhere below it."""
    root = Path(root)
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                target = path.resolve()
                inside = real_root == target or real_root in target.parents
                if not (inside or (allow_link is not None and allow_link(target))):
                    raise CheckpointError(
                        f"{path} is a symbolic link to {target}, outside {root}; refusing to read it "
                        "(copy the files into the directory instead)"
                    )
                try:
                    info = target.stat()
                except OSError:
                    raise CheckpointError(f"{path} is a broken symbolic link (to {target})") from None
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise CheckpointError(f"{path} is not a regular file or directory; refusing to read it")


def check_pretrained_directory(root: Path) -> None:
    """:func:`check_directory` for a Hugging Face model directory, which may be a hub-cache
    snapshot: there, files are symlinks to ``../../blobs/<hash>`` of the same repository, and
    those are allowed."""
    real_root = Path(root).resolve()
    blobs = real_root.parents[1] / "blobs" if len(real_root.parents) > 1 else None
    check_directory(root, allow_link=lambda target: blobs is not None and target.parent == blobs)


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """``json.loads`` of a file no larger than ``max_bytes``; CheckpointError otherwise."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    if size > max_bytes:
        raise CheckpointError(f"{path} is {size:,} bytes, over the {max_bytes:,}-byte limit for metadata")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
