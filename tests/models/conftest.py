"""Fixtures for the transformer backbone tests (helpers live in hf_oracle.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hf_oracle import build_tiny


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    cache: dict[str, tuple[Path, Any]] = {}

    def get(name: str) -> tuple[Path, Any]:
        if name not in cache:
            directory = tmp_path_factory.mktemp(name)
            cache[name] = (directory, build_tiny(name, directory))
        return cache[name]

    return get

