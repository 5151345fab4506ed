"""Atomic outputs: a file or directory appears whole under its name, or not at all.

Every output a command writes goes to a temporary name in the same directory (same file system,
so the final ``os.replace`` is atomic) and is renamed on success; on any error the temporary is
removed and whatever was at the name before is left untouched::

    with atomic_path("scores.parquet") as tmp:
        table.to_parquet(tmp)

    with atomic_path("model_dir", directory=True) as tmp:   # tmp is a fresh, empty directory
        write_everything_into(tmp)

    with atomic_entries("report/") as stage:                # several files into a shared folder
        write_files_into(stage)
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """A unique hidden name next to ``path`` (``.name.tmp-<pid>-<random>``)."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_path(path: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yields a temporary path to write ``path``'s content to; renames it to ``path`` on success.

    Args:
      path: the final file or directory; its parent is created.
      directory: the output is a directory: the temporary is created empty, and an existing
        directory at ``path`` is replaced only once the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {path}")
        _replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_entries(out_dir: str | Path) -> Iterator[Path]:
    """Yields a staging directory; on success moves each of its entries into ``out_dir``.

    For outputs made of several files in a directory that may hold other things (a report in
    ``--out``, a model in an existing folder): nothing appears until everything was written, each
    entry then replaces its namesake atomically, and entries of ``out_dir`` that the staging
    directory does not have are left alone. On error the staging directory is removed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = temporary_sibling(out_dir / "staging")
    stage.mkdir()
    try:
        yield stage
        for entry in sorted(stage.iterdir()):
            _replace(entry, out_dir / entry.name)
    finally:
        _remove(stage)


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 1) -> None:
    """Writes ``data`` as JSON to ``path`` through :func:`atomic_path`, fsynced before the rename,
    so a crash leaves either the old file or the new one (never a torn one, never a stray
    temporary: the temporary has a unique name and is removed on error)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=indent)
            fh.flush()
            os.fsync(fh.fileno())


def _replace(tmp: Path, path: Path) -> None:
    if not (tmp.is_dir() and path.is_dir() and not path.is_symlink()):
        os.replace(tmp, path)
        return
    old = temporary_sibling(path, "old")
    os.rename(path, old)  # a directory cannot be replaced in one step: move the old one aside first
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


__all__ = ["atomic_entries", "atomic_path", "temporary_sibling"]
