"""Library warnings shown as CLI messages: ``pluralrm <command>: warning: <text>``, each once."""
from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def printed_warnings(command: str) -> Iterator[None]:
    """Within the block, every distinct warning is printed once to stderr as one line."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if text not in seen:
            seen.add(text)
            print(f"pluralrm {command}: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield
