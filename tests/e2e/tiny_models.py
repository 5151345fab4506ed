"""Tiny random Hugging Face model directories for end-to-end tests (nothing is downloaded).

``write_tiny_model(layout, directory)`` writes what a user's local model directory holds:
``config.json`` and ``model.safetensors`` (transformers' own PyTorch classes with random,
perturbed weights, built by ``tests/models/hf_oracle.build_tiny``) and a fast tokenizer
(``tokenizer.json``, ``tokenizer_config.json``) built with the ``tokenizers`` library from
:data:`WORDS`: a WordPiece vocabulary for the BERT layout (also written as ``vocab.txt``), a
word-level one with a BOS post-processor and a chat template for the Llama layout. Both load
through ``AutoTokenizer.from_pretrained(directory, local_files_only=True)``.

:func:`comparison_rows` gives a small preference table in those words: two groups with
opposite tastes, so a conditioned head has something to learn.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.models.hf_oracle import SMALL, build_tiny

WORDS = (
    "good bad fine poor answer reply question ask the a is it this that and or not very "
    "what why how do you think about say x y"
).split()
DIGITS = list("0123456789")
CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|>{% endfor %}"
LAYOUTS = {"bert": "bert", "llama": "llama"}  # layout -> hf_oracle.TINY name


def write_tiny_model(layout: str, directory: Path) -> Path:
    """Writes a tiny random ``layout`` ("bert" or "llama") model directory; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    build_tiny(LAYOUTS[layout], directory)
    tokenizer = _bert_tokenizer(directory) if layout == "bert" else _llama_tokenizer()
    if len(tokenizer) > SMALL["vocab_size"]:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, the tiny model {SMALL['vocab_size']}")
    tokenizer.save_pretrained(str(directory))
    return directory


def _bert_tokenizer(directory: Path):
    from transformers import BertTokenizer  # transformers 5: backed by `tokenizers` (fast)

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + WORDS + DIGITS + [f"##{d}" for d in DIGITS]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})


def _llama_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>"]
    vocab = {t: i for i, t in enumerate(specials + WORDS + DIGITS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        extra_special_tokens=specials[4:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def comparison_rows(n: int) -> list[dict]:
    """``n`` comparisons in :data:`WORDS` with a ``country`` column: country A prefers "good ..."
    answers 90% of the time, country B "bad ..." ones (``tests/train/tiny_run.py``'s data)."""
    from tests.train.tiny_run import make_dataset

    train, held_out = make_dataset(n)
    return train.to_list() + held_out.to_list()


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
