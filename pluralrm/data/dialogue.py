"""Dialogues to (prompt, chosen, rejected) strings.

Two shapes of dialogue data are common in preference datasets:

- **Chat messages** (TRL's *conversational* format): ``chosen`` and ``rejected`` are lists of
  ``{"role": ..., "content": ...}`` messages, either full conversations (implicit prompt) or
  completions next to a ``prompt`` list (explicit prompt). :func:`flatten_conversation` keeps
  the shared leading messages as the prompt and the messages after them (the final assistant
  message(s)) as the responses.
- **Transcripts** (Anthropic HH-RLHF): ``chosen`` and ``rejected`` are whole strings
  ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``. :func:`split_transcript` cuts them at the last
  ``"\\n\\nAssistant:"``.

Rendering, fixed here once so that every loader produces the same strings:

- a prompt of messages becomes ``"role: content"`` per message, joined by a blank line
  (``"user: Hi\\n\\nassistant: Hello!\\n\\nuser: Tell me a joke"``);
- a response of one message is its content; of several (e.g. an assistant message and a tool
  result), their contents joined by a blank line;
- an HH transcript prompt keeps its own ``"Human:"``/``"Assistant:"`` tags, without the leading
  blank line and without the final ``"Assistant:"`` tag; the response is the final assistant
  turn with surrounding whitespace removed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pluralrm.data.badrows import RowProblem

HH_ASSISTANT = "\n\nAssistant:"
HH_HUMAN = "\n\nHuman:"


def render_messages(messages: Sequence[Mapping[str, str]]) -> str:
    """``"role: content"`` per message, joined by a blank line."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _check_messages(messages: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(messages, (list, tuple)):
        raise RowProblem(field, "must be a string or a list of {role, content} messages", messages)
    out = []
    for m in messages:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise RowProblem(field, "every message must be an object with string 'role' and 'content'", m)
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _response(messages: list[dict[str, str]], field: str) -> str:
    if not messages:
        raise RowProblem(field, "has no message after the prompt: chosen and rejected must differ in "
                         "their final assistant message(s)")
    if any(m["role"] in ("user", "system") for m in messages):
        raise RowProblem(field, "chosen and rejected differ before their final assistant message(s); "
                         "only the last turn may differ", [m["role"] for m in messages])
    return "\n\n".join(m["content"] for m in messages)


def flatten_conversation(prompt: Any, chosen: Any, rejected: Any) -> tuple[str, str, str]:
    """One conversational comparison to strings (see module docstring for the rendering).

    Args:
      prompt: a list of messages (explicit prompt), a string, or None (implicit prompt: the
        messages ``chosen`` and ``rejected`` share from the start).
      chosen, rejected: lists of ``{"role", "content"}`` messages.

    Returns:
      ``(prompt, chosen, rejected)`` strings.

    Raises:
      RowProblem: naming the field that is malformed.
    """
    c = _check_messages(chosen, "chosen")
    r = _check_messages(rejected, "rejected")
    if prompt is None:
        k = 0
        while k < min(len(c), len(r)) and c[k] == r[k]:
            k += 1
        # Identical final messages would make the shared prefix swallow the responses.
        while k > 0 and (k == len(c) or k == len(r)):
            k -= 1
        p_text = render_messages(c[:k])
        c, r = c[k:], r[k:]
    elif isinstance(prompt, str):
        p_text = prompt
    else:
        p_text = render_messages(_check_messages(prompt, "prompt"))
    return p_text, _response(c, "chosen"), _response(r, "rejected")


def flatten_rows(prompt: list | None, chosen: list, rejected: list) -> tuple[list, dict[int, RowProblem]]:
    """Flattens, in place, the rows whose ``chosen`` or ``rejected`` are message lists.

    Rows where both are strings, or either is missing, are left for the text checks.

    Args:
      prompt: N prompts (strings, message lists or None), or None when there is no prompt
        column (implicit prompts).
      chosen, rejected: N values each; replaced by strings (None where a row is malformed).

    Returns:
      ``(prompt, problems)``: the N prompts (a new list when ``prompt`` was None) and, by row,
      what is wrong with each malformed row (fields named ``prompt``/``chosen``/``rejected``).
    """
    explicit = prompt is not None
    prompt = prompt if explicit else [None] * len(chosen)
    problems: dict[int, RowProblem] = {}
    for i, (p, c, r) in enumerate(zip(prompt, chosen, rejected)):
        if c is None or r is None or (isinstance(c, str) and isinstance(r, str)):
            continue
        if explicit and p is None:
            problems[i] = RowProblem("prompt", "missing required field")
            continue
        try:
            prompt[i], chosen[i], rejected[i] = flatten_conversation(p, c, r)
        except RowProblem as e:
            problems[i] = e
            chosen[i] = rejected[i] = None
    return prompt, problems


def split_transcript(chosen: Any, rejected: Any) -> tuple[str, str, str]:
    """One HH-RLHF pair of transcripts to ``(prompt, chosen, rejected)`` (see module docstring).

    Raises:
      RowProblem: when a field is not a transcript, or the two differ before the last
        ``"\\n\\nAssistant:"`` turn.
    """
    for field, text in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(text, str) or HH_ASSISTANT not in text:
            raise RowProblem(field, "is not an HH transcript ('\\n\\nHuman: ... \\n\\nAssistant: ...')", text)
    cut = chosen.rfind(HH_ASSISTANT)
    head = chosen[: cut + len(HH_ASSISTANT)]
    if not rejected.startswith(head):
        raise RowProblem("rejected", "must repeat 'chosen' up to its last 'Assistant:' turn; only "
                         "the final assistant response may differ", rejected[-80:])
    tails = {"chosen": chosen[len(head):], "rejected": rejected[len(head):]}
    for field, tail in tails.items():
        if HH_ASSISTANT in tail or HH_HUMAN in tail:
            raise RowProblem(field, "must end with the final 'Assistant:' turn of the shared "
                             "conversation", tail[-80:])
    return chosen[:cut].lstrip(), tails["chosen"].strip(), tails["rejected"].strip()
