"""Prompts and completions in TRL's two formats, to the strings the reward model reads.

*Standard*: a prompt and a completion are strings. *Conversational*: a prompt is a list of
``{"role", "content"}`` messages and a completion the list of messages generated after it
(usually one assistant message). They are rendered as :mod:`pluralrm.data.dialogue` renders
conversational training data, so that a model trained on chat data is scored on the same
strings: a message list prompt becomes ``"role: content"`` per message joined by a blank line,
a completion its messages' contents joined by a blank line.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pluralrm.data.dialogue import render_messages
from pluralrm.errors import DataError


def check_messages(value: Any, field: str) -> list[dict[str, str]]:
    """``value`` as a list of ``{role, content}`` string messages.

    Raises:
      DataError: whose ``field`` names the message and key at fault (``prompts.2.1.content``).
    """
    if not isinstance(value, (list, tuple)):
        raise DataError("must be a string or a list of {role, content} messages", field=field, value=value)
    out = []
    for j, m in enumerate(value):
        if not isinstance(m, Mapping):
            raise DataError("a chat message must be an object with string 'role' and 'content'",
                            field=f"{field}.{j}", value=m)
        for key in ("role", "content"):
            if not isinstance(m.get(key), str):
                problem = "is missing" if key not in m else f"must be a string, got {type(m[key]).__name__}"
                raise DataError(f"{problem}", field=f"{field}.{j}.{key}", value=m.get(key))
        out.append({"role": m["role"], "content": m["content"]})
    return out


def prompt_text(value: Any, field: str = "prompt") -> str:
    """A prompt (string or messages) as text."""
    return value if isinstance(value, str) else render_messages(check_messages(value, field))


def completion_text(value: Any, field: str = "completion") -> str:
    """A completion (string or the messages after the prompt) as text."""
    if isinstance(value, str):
        return value
    return "\n\n".join(m["content"] for m in check_messages(value, field))


def texts(prompts: Sequence[Any], completions: Sequence[Any]) -> tuple[list[str], list[str]]:
    """Both columns as strings (fields named ``prompts.i`` / ``completions.i`` in errors)."""
    if len(prompts) != len(completions):
        raise DataError(f"{len(completions)} completions for {len(prompts)} prompts", field="completions")
    return ([prompt_text(p, f"prompts.{i}") for i, p in enumerate(prompts)],
            [completion_text(c, f"completions.{i}") for i, c in enumerate(completions)])


__all__ = ["check_messages", "completion_text", "prompt_text", "texts"]
