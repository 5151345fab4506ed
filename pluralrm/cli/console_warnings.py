"""Library messages shown as CLI messages.

``printed_warnings(command)`` prints library warnings as ``pluralrm <command>: warning: <text>``,
each once, without Python's source lines. ``cli_words(text, command)`` rewrites the hints that
library messages give in Python terms (``pass on_bad_row='skip'``) into the command's own
words (``pass --on-bad-row skip``; for ``train``, ``--set data.on_bad_row=skip``).
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

# Python wording -> {command: CLI wording}; "*" is every other command
_HINTS: dict[str, dict[str, str]] = {
    "pass on_bad_row='skip'": {"train": "pass --set data.on_bad_row=skip", "*": "pass --on-bad-row skip"},
    "pass extra='ignore' to drop undeclared columns": {
        "train": "remove the undeclared columns from the data file",
        "*": "pass --extra ignore to drop undeclared columns"},
    "add it to groups=": {"train": "add it to data.groups", "*": "add it to --groups"},
    "declared in groups=": {"train": "declared in data.groups", "*": "declared in --groups"},
}


def cli_words(text: str, command: str) -> str:
    """``text`` with Python-style option hints replaced by ``command``'s flags."""
    for python, cli in _HINTS.items():
        if python in text:
            text = text.replace(python, cli.get(command, cli["*"]))
    return text


@contextlib.contextmanager
def printed_warnings(command: str) -> Iterator[None]:
    """Within the block, every distinct warning is printed once to stderr as one line."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = cli_words(str(message), command)
        if text not in seen:
            seen.add(text)
            print(f"pluralrm {command}: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield
