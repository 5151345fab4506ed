"""A tiny reward model whose groups disagree, for scoring, CLI and server tests."""
from pathlib import Path

import numpy as np

from pluralrm.data.schema import GroupSchema
from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

# groups (most frequent first): US/en x3, NG/yo x2, NG/en x1, IN/hi x1
SCHEMA = GroupSchema.from_columns({
    "country": ["US", "US", "US", "NG", "NG", "NG", "IN"],
    "language": ["en", "en", "en", "yo", "yo", "en", "hi"],
})
BACKBONE = BackboneConfig(num_buckets=1 << 10, embed_dim=8, hidden_dims=(16,), buckets=(32, 64, 128, 512))
PROMPTS = ["How do I greet my elders?", "Is it fine to skip the ceremony?", "Tell me a joke"]
RESPONSES = ["Bow and greet them first.", "Yes, if you are busy.", "Why did the chicken cross?"]


def tiny_model(seed: int = 0) -> RewardModel:
    """A conditioned-head model with every parameter jittered so that groups score differently."""
    import jax
    from flax import nnx

    config = ModelConfig(backbone=BACKBONE, head=HeadConfig(type="conditioned", hidden_dim=8))
    model = RewardModel.create(config, SCHEMA, seed=seed)
    rng = np.random.default_rng(seed + 11)
    params = nnx.state(model.net, nnx.Param)
    nnx.update(model.net, jax.tree.map(lambda x: x + 0.5 * rng.standard_normal(x.shape).astype(x.dtype), params))
    return model


def saved_model(directory: Path, seed: int = 0) -> Path:
    """Saves ``tiny_model(seed)`` under ``directory`` (once) and returns the model directory."""
    path = Path(directory) / f"tiny-{seed}"
    if not (path / "model.json").exists():
        tiny_model(seed).save(path)
    return path


def candidate_rows(n_prompts: int, per_prompt: int, groups=("NG", "US", "FR", "")) -> list[dict]:
    """Candidate rows, each prompt's candidates together, with a per-row country column."""
    return [
        {"prompt": f"prompt {i}", "response": f"answer {j} to question {i}: {'yes' if (i + j) % 2 else 'no'}",
         "country": groups[(i + j) % len(groups)]}
        for i in range(n_prompts) for j in range(per_prompt)
    ]


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Writes rows as JSONL, CSV or Parquet (by suffix)."""
    import csv
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_rows(path: Path) -> list[dict]:
    """Reads what score_file wrote (JSONL, CSV or Parquet) back as rows (CSV values are strings)."""
    import csv
    import json

    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    return pq.read_table(path).to_pylist()
