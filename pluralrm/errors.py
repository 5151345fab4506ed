"""Errors pluralrm raises for its users.

Every error says what was wrong, where (file, row, field, tensor, key) and, where it can, what
to do about it. Library code raises these instead of bare ``assert`` or ``KeyError`` for
anything a user controls.
"""
from __future__ import annotations

from typing import Any


class PluralRMError(Exception):
    """Base class of every error pluralrm raises on purpose."""


class DataError(PluralRMError, ValueError):
    """A data file or table is malformed.

    Attributes name the location so that callers (the CLI, a bad-row policy) can report or
    collect it: ``file`` (path or None for in-memory data), ``row`` (1-based line for JSONL/CSV,
    1-based record index otherwise), ``field`` and the offending ``value``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.row = row
        self.field = field
        self.value = value
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        text = f"{prefix}: {self.reason}" if prefix else self.reason
        if self.value is not None:
            shown = repr(self.value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            text += f" (got {shown})"
        return text


class ConfigError(PluralRMError, ValueError):
    """A configuration key or value is invalid."""


class CheckpointError(PluralRMError):
    """A checkpoint or pretrained-weights directory cannot be read or does not fit the model."""
