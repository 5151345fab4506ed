"""TRL's GRPOTrainer, for real, with pluralrm reward functions (``make test-trl``).

Runs in the TRL environment (benchmarks/.venv-trl: torch CPU + TRL), with the project's own
environment's site-packages appended *after* TRL's (``--site``) so that JAX/Flax come from
there while torch/transformers/datasets stay TRL's. Builds, with no download:

- a tiny word-level tokenizer (``tokenizers``) and a randomly initialised Llama-layout policy;
- a tiny pluralrm reward model whose groups disagree (tests/score/score_helpers.py), saved and
  loaded back from its directory;

trains GRPO for a few steps on CPU with two reward functions (the worst-off group over all
groups; each prompt's own ``country`` column, one value unseen), then checks that every reward
TRL logged equals ``RewardModel.score`` / ``score_all_groups`` on the logged completions, and
that TRL's ``rewards/<name>/mean`` metric is their mean; then once more with conversational
prompts (chat messages through the tokenizer's chat template), checking the rewards against
the rendered conversation. Prints the rewards; exit status 0 = pass.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("hello there how are you today fine thanks what is the weather sunny rain good bad kind "
         "greet elders bow first yes no maybe tell joke chicken cross road why please help").split()
PROMPTS = ["hello there how are you", "what is the weather today", "tell me a joke please", "greet elders first"]
COUNTRIES = ["NG", "US", "FR", ""]  # FR is not in the model's schema: the pooled reward, with a note


def setup_paths(site: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(1, str(ROOT / "tests" / "score"))
    if site:
        sys.path.append(site)  # after TRL's own site-packages: torch/transformers/datasets stay TRL's


CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}assistant {% endif %}")


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<unk>", "user", "assistant", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_policy(vocab_size: int, pad_id: int, eos_id: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         pad_token_id=pad_id, eos_token_id=eos_id, bos_token_id=None)
    return LlamaForCausalLM(config)


def grpo_config(output_dir: Path, steps: int, seed: int = 0):
    """GRPO on CPU: 16 completions per step (4 prompts x 4 generations) of at most 6 tokens."""
    from trl import GRPOConfig

    return GRPOConfig(output_dir=str(output_dir), per_device_train_batch_size=16, num_generations=4,
                      max_completion_length=6, max_steps=steps, learning_rate=1e-2, logging_steps=1,
                      report_to="none", use_cpu=True, bf16=False, save_strategy="no", seed=seed, disable_tqdm=True)


def run_conversational(out: Path, rm, steps: int) -> dict:
    """GRPO on chat-message prompts; the logged rewards against ``rm.score`` on the rendered text."""
    import numpy as np
    from datasets import Dataset
    from trl import GRPOTrainer

    from pluralrm.data.dialogue import render_messages
    from pluralrm.integrations.trl import reward_function

    fn = reward_function(rm, groups="country=US")
    tokenizer = tiny_tokenizer()
    policy = tiny_policy(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in PROMPTS]})
    trainer = GRPOTrainer(model=policy, reward_funcs=[fn], args=grpo_config(out / "grpo-chat", steps, seed=1),
                          train_dataset=data,
                          processing_class=tokenizer)
    trainer.train()
    prompts, completions = list(trainer._logs["prompt"]), list(trainer._logs["completion"])
    assert isinstance(prompts[0], list) and isinstance(completions[0], list), (prompts[0], completions[0])
    logged = np.array(trainer._logs["rewards"][fn.__name__], np.float64)
    expected = rm.score([render_messages(p) for p in prompts], ["\n\n".join(m["content"] for m in c)
                                                                 for c in completions], groups="country=US")
    return {"completions": len(completions), "example_prompt": prompts[0], "example_completion": completions[0],
            "logged": logged.tolist(), "score": expected.tolist(),
            "max_abs_diff": float(np.max(np.abs(logged - expected)))}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", help="the project environment's site-packages (JAX, Flax, ...)")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    setup_paths(args.site)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

    import numpy as np
    import trl
    from datasets import Dataset
    from score_helpers import tiny_model
    from trl import GRPOTrainer

    from pluralrm.integrations.trl import reward_function
    from pluralrm.models import RewardModel

    out = Path(tempfile.mkdtemp(prefix="pluralrm-grpo-"))
    tiny_model().save(out / "rm")
    rm = RewardModel.load(out / "rm")
    worst = reward_function(out / "rm", groups="all", aggregate="worst")
    by_country = reward_function(rm, group_column="country", group_attribute="country")

    tokenizer = tiny_tokenizer()
    policy = tiny_policy(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    data = Dataset.from_dict({"prompt": PROMPTS, "country": COUNTRIES})
    trainer = GRPOTrainer(model=policy, reward_funcs=[worst, by_country], args=grpo_config(out / "grpo", args.steps),
                          train_dataset=data,
                          processing_class=tokenizer)
    trainer.train()

    prompts = list(trainer._logs["prompt"])
    completions = list(trainer._logs["completion"])
    logged = {name: np.array(trainer._logs["rewards"][name], np.float64) for name in (worst.__name__,
                                                                                       by_country.__name__)}
    table, _ = rm.score_all_groups(prompts, completions)
    expected_worst = table.min(axis=1)
    country = dict(zip(PROMPTS, COUNTRIES))
    groups = [{"country": country[p]} if country[p] in ("NG", "US") else {} for p in prompts]
    expected_country = rm.score(prompts, completions, groups=groups)
    last = [h for h in trainer.state.log_history if f"rewards/{worst.__name__}/mean" in h][-1]
    report = {
        "trl": trl.__version__, "steps": trainer.state.global_step, "completions": len(completions),
        "prompts": prompts, "completions_text": completions,
        "logged_worst": logged[worst.__name__].tolist(), "score_worst": expected_worst.tolist(),
        "logged_by_country": logged[by_country.__name__].tolist(), "score_by_country": expected_country.tolist(),
        "max_abs_diff_worst": float(np.max(np.abs(logged[worst.__name__] - expected_worst))),
        "max_abs_diff_by_country": float(np.max(np.abs(logged[by_country.__name__] - expected_country))),
        "trl_metric_mean_worst": last[f"rewards/{worst.__name__}/mean"],
        "notes": by_country.last_notes,
    }
    conversational = run_conversational(out, rm, args.steps)
    report["conversational"] = conversational
    print(json.dumps(report, indent=1))
    ok = conversational["max_abs_diff"] <= 1e-5 and conversational["completions"] >= 4 and (
          report["steps"] == args.steps and len(completions) >= 4 and len(set(completions)) > 1
          and report["max_abs_diff_worst"] <= 1e-5 and report["max_abs_diff_by_country"] <= 1e-5
          and abs(report["trl_metric_mean_worst"] - float(np.mean(logged[worst.__name__]))) <= 1e-5
          and "FR" in " ".join(report["notes"]))
    print("grpo_check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
