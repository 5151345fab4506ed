"""Bad rows: finding them, then either raising for the first or skipping them all with a report.

Validation marks rows in bulk (vectorised masks over whole columns) and only builds a message
for the rows it reports: :class:`BadRows` records, per row, *which* check failed first, and
turns that into a :class:`RowProblem` on demand. :func:`resolve` applies the bad-row policy:
``"error"`` raises a :class:`~pluralrm.errors.DataError` for the first bad row; ``"skip"``
keeps the good rows, returns a :class:`LoadReport`, and warns with the count and the first
reasons (a :class:`DataWarning`) — skipping is never silent.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pluralrm.errors import ConfigError, DataError

BAD_ROW_POLICIES: tuple[str, ...] = ("error", "skip")
MAX_REPORTED: int = 5


class DataWarning(UserWarning):
    """Data was changed on the way in (rows skipped, columns dropped); the message says what."""


class RowProblem(Exception):
    """What is wrong with one row: the field (as named in the source), the reason, the value."""

    def __init__(self, field: str | None, reason: str, value: Any = None) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.value = value


@dataclass(frozen=True)
class LoadReport:
    """What loading kept and skipped.

    Attributes:
      source: the path read, or ``None`` for in-memory data.
      rows_read: records in the source.
      rows_kept: rows in the returned dataset.
      problems: one :class:`DataError` (file, row, field, value) for each of the first
        ``MAX_REPORTED`` skipped rows.
      dropped_columns: columns left out because they were not declared (``extra="ignore"``).
    """

    source: str | None
    rows_read: int
    rows_kept: int
    problems: tuple[DataError, ...] = ()
    dropped_columns: tuple[str, ...] = ()

    @property
    def rows_skipped(self) -> int:
        return self.rows_read - self.rows_kept

    def to_text(self) -> str:
        where = self.source or "<in-memory data>"
        lines = [f"{where}: kept {self.rows_kept} of {self.rows_read} rows"]
        if self.rows_skipped:
            lines[0] += f", skipped {self.rows_skipped}; first reasons:"
            lines += [f"  - {e}" for e in self.problems]
        if self.dropped_columns:
            lines.append(f"  dropped undeclared columns: {', '.join(self.dropped_columns)}")
        return "\n".join(lines)


class BadRows:
    """Collects row flags from vectorised checks; the first check that flags a row wins.

    Args:
      n: number of rows N.
    """

    def __init__(self, n: int) -> None:
        self._code = np.full(n, -1, dtype=np.int32)
        self._describe: list[Callable[[int], RowProblem]] = []

    def add(self, mask: np.ndarray, describe: Callable[[int], RowProblem]) -> None:
        """Flags the rows where ``mask`` ([N] bool) holds; ``describe(i)`` explains row i."""
        new = np.asarray(mask, dtype=bool) & (self._code < 0)
        if new.any():
            self._code[new] = len(self._describe)
            self._describe.append(describe)

    def add_known(self, problems: Mapping[int, RowProblem]) -> None:
        """Flags rows whose problem is already known (e.g. a line that is not JSON)."""
        if problems:
            mask = np.zeros(len(self._code), dtype=bool)
            mask[np.fromiter(problems, dtype=np.int64, count=len(problems))] = True
            self.add(mask, problems.__getitem__)

    @property
    def mask(self) -> np.ndarray:
        """``[N]`` bool, True where a row is bad."""
        return self._code >= 0

    def problem(self, i: int) -> RowProblem:
        return self._describe[self._code[i]](i)


def check_policy(on_bad_row: str) -> None:
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"on_bad_row must be one of {BAD_ROW_POLICIES}, got {on_bad_row!r}")


def as_error(problem: RowProblem, source: str | None, row: int, hint: str = "") -> DataError:
    return DataError(problem.reason + hint, file=source, row=row, field=problem.field, value=problem.value)


def resolve(
    bad: BadRows,
    on_bad_row: str,
    source: str | None,
    locate: Callable[[int], int],
    dropped_columns: tuple[str, ...] = (),
) -> tuple[np.ndarray, LoadReport]:
    """Applies the bad-row policy.

    Args:
      bad: the flags.
      on_bad_row: ``"error"`` (raise for the first bad row) or ``"skip"``.
      source: path named in errors (None for in-memory data).
      locate: table row (0-based) -> the row number users see (1-based line or record).
      dropped_columns: recorded in the report.

    Returns:
      ``(keep [N] bool, report)``.
    """
    check_policy(on_bad_row)
    mask = bad.mask
    n = len(mask)
    flagged = np.flatnonzero(mask)
    if len(flagged) and on_bad_row == "error":
        i = int(flagged[0])
        raise as_error(bad.problem(i), source, locate(i),
                       " (fix the row, or pass on_bad_row='skip' to skip bad rows)")
    problems = tuple(as_error(bad.problem(int(i)), source, locate(int(i))) for i in flagged[:MAX_REPORTED])
    report = LoadReport(source, n, n - len(flagged), problems, dropped_columns)
    if len(flagged) == n:
        raise DataError(f"every one of the {n} rows is bad; first reasons: "
                        + "; ".join(str(e) for e in problems), file=source)
    if len(flagged):
        warnings.warn(report.to_text(), DataWarning, stacklevel=3)
    return ~mask, report
