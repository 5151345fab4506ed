"""Tokenizer featurizer: (prompt, response) texts -> padded token ids for transformer backbones.

``TokenizerFeaturizer(path)`` loads the Hugging Face tokenizer of a local model directory or
preset (``local_files_only``: nothing is downloaded) and formats each example for its family:

- **encoders** (BERT, RoBERTa, ...): the tokenizer's own *pair* encoding
  ``[CLS] prompt [SEP] response [SEP]`` with token types 0/1;
- **decoders** (Llama, Qwen, ...): the tokenizer's *chat template* with the prompt as the user
  turn and the response as the assistant turn; a tokenizer without a chat template uses the
  *plain* template :data:`PLAIN_TEMPLATE` with the tokenizer's own special tokens (e.g. BOS).

Too-long examples lose prompt tokens first, from the left (the end of the prompt, nearest the
response, survives); only when the prompt is gone is the response cut, from its end. Truncation
cuts the *text* at token boundaries (character offsets) and encodes again, so every output is
an honest encoding by the tokenizer. Output arrays are int32 ``[N, L]`` with ``L`` the smallest
bucket that fits the longest example. Encoders pad on the right; decoders on either side
(``padding_side``), which the backbones handle identically.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.data.featurize import bucket_length, pad_rows, register_featurizer
from pluralrm.errors import ConfigError

PLAIN_TEMPLATE = "User: {prompt}\n\nAssistant: {response}"
TEMPLATES = ("auto", "pair", "chat", "plain")
MAX_TRUNCATION_ROUNDS = 8


@dataclass(frozen=True)
class TokenizerFeaturizer:
    """Pretrained-tokenizer featurizer (see module docstring).

    Attributes:
        path: local Hugging Face model directory or preset name (e.g. ``"minilm-l6"``).
        max_length: longest encoded example, special tokens included.
        buckets: padded lengths; ``max_length`` is always the last one.
        padding_side: ``"right"`` (any family) or ``"left"`` (decoders only).
        template: ``"auto"`` (pair for encoders; chat, else plain, for decoders) or one of
            ``"pair"``, ``"chat"``, ``"plain"``.
        batching: ``"padded"`` or ``"packed"``: how batches built from this featurizer's output
            are laid out (``pluralrm.data.packing``; packed rows are ``max_length`` long). The
            featurizer's own output is always padded; the batch builders read this flag.

    Output of ``__call__``: ``{"input_ids", "attention_mask", "token_type_ids"}`` int32 ``[N, L]``.
    """

    path: str
    max_length: int = 256
    buckets: tuple[int, ...] = (32, 64, 128, 256)
    padding_side: str = "right"
    template: str = "auto"
    batching: str = "padded"
    family: str = field(init=False, compare=False)
    _tokenizer: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from pluralrm.pretrained import model_family, read_config, resolve_pretrained

        if self.max_length < 4:
            raise ConfigError(f"tokenizer max_length must be >= 4, got {self.max_length}")
        if self.padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")
        if self.batching not in ("padded", "packed"):
            raise ConfigError(f"batching must be 'padded' or 'packed', got {self.batching!r}")
        if self.template not in TEMPLATES:
            raise ConfigError(f"template {self.template!r} is not one of {list(TEMPLATES)}")
        buckets = tuple(sorted(int(b) for b in self.buckets if 0 < b <= self.max_length))
        if not buckets or buckets[-1] != self.max_length:
            buckets = buckets + (self.max_length,)
        object.__setattr__(self, "buckets", buckets)

        directory = resolve_pretrained(self.path).directory
        family = model_family(read_config(directory), directory / "config.json")
        if family == "encoder" and self.padding_side == "left":
            raise ConfigError(f"{self.path}: encoders pad on the right; padding_side='left' is for decoders")
        tokenizer = _load_tokenizer(directory)
        template = self.template
        if template == "auto":
            template = "pair" if family == "encoder" else ("chat" if tokenizer.chat_template else "plain")
        if template == "chat" and not tokenizer.chat_template:
            raise ConfigError(f"{directory}: the tokenizer has no chat template; use template='plain' or 'auto'")
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "_tokenizer", tokenizer)

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        prompts, responses = [str(p) for p in prompts], [str(r) for r in responses]
        if not prompts:
            empty = np.zeros((0, self.buckets[0]), np.int32)
            return {"input_ids": empty, "attention_mask": empty.copy(), "token_type_ids": empty.copy()}
        ids, types = self._encode(prompts, responses)
        self._truncate(prompts, responses, ids, types)
        longest = max((len(r) for r in ids), default=1)
        length = bucket_length(max(longest, 1), self.buckets)
        left = self.padding_side == "left"
        pad_id = self._tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self._tokenizer.eos_token_id or 0
        return {
            "input_ids": pad_rows([np.asarray(r, np.int32) for r in ids], length, pad_id, left),
            "attention_mask": pad_rows([np.ones(len(r), np.int32) for r in ids], length, 0, left),
            "token_type_ids": pad_rows([np.asarray(t, np.int32) for t in types], length, 0, left),
        }

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "tokenizer",
            "path": self.path,
            "max_length": self.max_length,
            "buckets": list(self.buckets),
            "padding_side": self.padding_side,
            "template": self.template,
            "batching": self.batching,
        }

    # ----------------------------------------------------------------------- encoding
    def _encode(self, prompts: list[str], responses: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        """Untruncated ids and token types of every example, in one batched call."""
        tok = self._tokenizer
        if self.template == "pair":
            enc = tok(prompts, responses, add_special_tokens=True, return_token_type_ids=True,
                      return_attention_mask=False)
            return list(enc["input_ids"]), list(enc["token_type_ids"])
        if self.template == "chat":
            chats = [[{"role": "user", "content": p}, {"role": "assistant", "content": r}]
                     for p, r in zip(prompts, responses)]
            texts = tok.apply_chat_template(chats, tokenize=False) if chats else []
            ids = tok(list(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]
        else:
            texts = [PLAIN_TEMPLATE.format(prompt=p, response=r) for p, r in zip(prompts, responses)]
            ids = tok(texts, add_special_tokens=True, return_attention_mask=False)["input_ids"]
        ids = list(ids)
        return ids, [[0] * len(r) for r in ids]

    def _truncate(self, prompts: list[str], responses: list[str], ids: list[list[int]], types: list[list[int]]) -> None:
        """Shortens over-long examples in place: prompt from the left, then response from the right."""
        for _ in range(MAX_TRUNCATION_ROUNDS):
            over = [i for i, r in enumerate(ids) if len(r) > self.max_length]
            if not over:
                return
            p_offsets = self._offsets([prompts[i] for i in over])
            r_offsets = self._offsets([responses[i] for i in over])
            for i, po, ro in zip(over, p_offsets, r_offsets):
                excess = len(ids[i]) - self.max_length
                if po:
                    cut = _word_start(prompts[i], po, excess, step=1)
                    prompts[i] = prompts[i][po[cut][0]:] if cut < len(po) else ""
                else:
                    cut = _word_start(responses[i], ro, len(ro) - excess, step=-1)
                    responses[i] = responses[i][: ro[cut][0]] if cut > 0 else ""
            redo_ids, redo_types = self._encode([prompts[i] for i in over], [responses[i] for i in over])
            for i, new_ids, new_types in zip(over, redo_ids, redo_types):
                ids[i], types[i] = new_ids, new_types
        for i, r in enumerate(ids):  # templates longer than max_length: keep the beginning
            ids[i], types[i] = r[: self.max_length], types[i][: self.max_length]

    def _offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        enc = self._tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                              return_attention_mask=False)
        return [list(o) for o in enc["offset_mapping"]]


def _word_start(text: str, offsets: list[tuple[int, int]], index: int, step: int, reach: int = 8) -> int:
    """The token index nearest ``index`` (moving by ``step``) at which a word starts.

    Cutting text inside a word makes the remaining piece tokenize differently (``w81`` is
    ``w ##8 ##1`` but ``81`` alone is one token), so cuts prefer word starts; text without
    spaces (e.g. Chinese) keeps ``index``.
    """
    i = index
    for _ in range(reach):
        if i <= 0 or i >= len(offsets):
            return i
        start = offsets[i][0]
        if start > 0 and text[start - 1].isspace():
            return i
        i += step
    return index


def _load_tokenizer(directory: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{directory}: cannot load a tokenizer ({type(e).__name__}: {e})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{directory}: a fast tokenizer (tokenizer.json) is needed for offsets and batching")
    return tokenizer


register_featurizer("tokenizer", TokenizerFeaturizer)
