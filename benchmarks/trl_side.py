"""The TRL side of ``benchmarks/trl_bench.py``; runs in ``benchmarks/.venv-trl`` (PyTorch, CPU).

    benchmarks/.venv-trl/bin/python benchmarks/trl_side.py --spec spec.json --out result.json

Reads the spec written by the driver (data files, model directory, steps, batch size, learning
rate, seed) and writes one JSON result: a timestamp at the start of every optimizer step, the
padded length of every batch, the held-out accuracy, torch's own matmul peak, and the cost of
scoring G groups by G passes of the model with the group written into the prompt.

Training is TRL's ``RewardTrainer`` as a user runs it: ``AutoModelForSequenceClassification``
(num_labels=1) loaded from the local MiniLM directory, the dataset already tokenized
(``chosen_ids``/``rejected_ids``: the very token ids the pluralrm side trains on), TRL's own
collator (pads to the longest sequence in the batch), AdamW, constant learning rate, no warmup,
no weight decay, gradient clipping at 1.0, dropout disabled (TRL's default). Precision and
activation checkpointing come from the spec (float32 / bf16 autocast; checkpointing off unless
asked), never from ``RewardConfig``'s defaults (bf16 and gradient checkpointing on). Imports
nothing from pluralrm (a different environment).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def torch_peak(size: int = 2048, seconds: float = 3.0) -> float:
    """float32 matmul FLOP/s of torch on this machine (best of a loop)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def train(spec: dict, out: dict):
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    torch.manual_seed(spec["seed"])
    rows = read_jsonl(spec["train_tokens"])
    dataset = Dataset.from_dict({"chosen_ids": [r["chosen_ids"] for r in rows],
                                 "rejected_ids": [r["rejected_ids"] for r in rows]})
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"], local_files_only=True)
    args = RewardConfig(
        output_dir=spec["work_dir"],
        max_steps=spec["steps"],
        per_device_train_batch_size=spec["batch_size"],
        learning_rate=spec["lr"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        max_length=spec["max_length"],
        seed=spec["seed"],
        data_seed=spec["seed"],
        use_cpu=True,
        # explicit: RewardConfig's own defaults are bf16=True (torch.autocast) and
        # gradient_checkpointing=True (layers recomputed in the backward pass)
        bf16=spec.get("precision") == "bf16-mixed",
        gradient_checkpointing=bool(spec.get("trl_gradient_checkpointing", False)),
        report_to=[],
        save_strategy="no",
        logging_steps=10**9,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    stamps: list[float] = []
    lengths: list[int] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

        def on_train_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    trainer = RewardTrainer(model=spec["model_dir"], args=args, train_dataset=dataset,
                            processing_class=tokenizer, callbacks=[Clock()])
    collate = trainer.data_collator

    rows: list[int] = []
    sequence_lengths: list[list[int]] = []

    def measured(examples):
        batch = collate(examples)
        if "input_ids" in batch:
            masks = [batch["attention_mask"]]
        else:  # older TRL: separate chosen / rejected tensors
            masks = [batch["attention_mask_chosen"], batch["attention_mask_rejected"]]
        lengths.append(max(int(m.shape[1]) for m in masks))
        rows.append(sum(int(m.shape[0]) for m in masks))
        sequence_lengths.append([int(n) for m in masks for n in m.sum(dim=1).tolist()])
        return batch

    trainer.data_collator = measured
    trainer.train()
    out["train"] = {"stamps": stamps, "lengths": lengths, "widths": lengths, "rows": rows,
                    "sequence_lengths": sequence_lengths, "steps": spec["steps"], "batch_size": spec["batch_size"],
                    "threads": torch.get_num_threads(), "bf16": bool(args.bf16),
                    "gradient_checkpointing": bool(args.gradient_checkpointing)}
    model = trainer.model.eval()
    out["eval_accuracy"] = held_out_accuracy(model, read_jsonl(spec["eval_tokens"]), tokenizer.pad_token_id)
    return model, tokenizer


def _reward(model, ids: list[list[int]], pad_id: int):
    import torch

    length = max(len(r) for r in ids)
    input_ids = torch.full((len(ids), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), length), dtype=torch.long)
    for i, r in enumerate(ids):
        input_ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return model(input_ids=input_ids, attention_mask=mask).logits[:, 0]


def held_out_accuracy(model, rows: list[dict], pad_id: int, batch: int = 64) -> float:
    """Fraction of held-out pairs whose chosen response gets the higher reward."""
    import torch

    correct = 0
    with torch.inference_mode():
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            chosen = _reward(model, [r["chosen_ids"] for r in part], pad_id)
            rejected = _reward(model, [r["rejected_ids"] for r in part], pad_id)
            correct += int((chosen > rejected).sum())
    return correct / len(rows)


def group_scoring(model, tokenizer, spec: dict) -> list[dict]:
    """Seconds to score N responses under G groups: G passes, the group written into the prompt
    (tokenization included, as on the pluralrm side, which tokenizes once)."""
    import torch

    texts = read_jsonl(spec["score_texts"])
    batch = spec["score_batch"]
    results = []

    def score(groups: int) -> None:
        for g in range(groups):
            for start in range(0, len(texts), batch):
                part = texts[start : start + batch]
                enc = tokenizer([f"group g{g}: {t['prompt']}{t['response']}" for t in part], padding=True,
                                truncation=True, max_length=spec["max_length"], return_tensors="pt")
                model(**enc).logits

    with torch.inference_mode():
        score(1)  # warm-up
        for groups in spec["score_groups"]:
            start = time.perf_counter()
            score(groups)
            results.append({"groups": groups, "seconds": time.perf_counter() - start})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text())
    import torch
    import trl

    out: dict = {"versions": {"torch": torch.__version__, "trl": trl.__version__}}
    out["torch_peak_flops"] = torch_peak()
    model, tokenizer = train(spec, out)
    if spec.get("score_groups"):
        out["scoring"] = group_scoring(model, tokenizer, spec)
    Path(args.out).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
