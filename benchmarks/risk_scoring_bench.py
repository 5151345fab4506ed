"""Risk-sensitive scoring costs about what mean scoring does: one backbone pass either way.

    python benchmarks/risk_scoring_bench.py [--rows 4096] [--repeats 7] [--head mean_variance]

Times ``RewardModel.score`` (and ``score_all_groups``) with and without ``risk=0.1`` on the same
texts, interleaved A, B, A, B (the machine is shared, so only ratios within one run mean
anything), after a warm-up call of each that compiles; also the compiled model call alone on one
featurized batch. Prints the median seconds of each, the ratios risk / mean of the medians and
of the fastest runs, and the machine's load.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--head", default="mean_variance", choices=["mean_variance", "categorical", "distributional"])
    args = p.parse_args(argv)

    import numpy as np

    from pluralrm.data.schema import GroupSchema
    from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

    schema = GroupSchema.from_columns({"country": ["US", "NG", "IN", "FR"] * 3, "language": ["en", "yo", "hi", "fr"] * 3})
    config = ModelConfig(backbone=BackboneConfig(num_buckets=1 << 14, embed_dim=32, hidden_dims=(64,)),
                         head=HeadConfig(type=args.head, hidden_dim=32))
    model = RewardModel.create(config, schema)
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(2000)]
    prompts = [" ".join(rng.choice(vocab, 12)) for _ in range(args.rows)]
    responses = [" ".join(rng.choice(vocab, int(rng.integers(10, 80)))) for _ in range(args.rows)]
    calls = {
        "score mean": lambda: model.score(prompts, responses, groups="country=NG"),
        "score risk": lambda: model.score(prompts, responses, groups="country=NG", risk=0.1),
        "all groups mean": lambda: model.score_all_groups(prompts, responses),
        "all groups risk": lambda: model.score_all_groups(prompts, responses, risk=0.1),
    }
    # the compiled model call alone (texts featurized once): where a risk score could cost more
    import jax
    from flax import nnx

    from pluralrm.models.compiled import pad_batch
    from pluralrm.models.net import RewardNet

    state = nnx.state(model.net)
    n = min(args.rows, model.batch_size)
    inputs = pad_batch(model.featurizer(prompts[:n], responses[:n]), n)
    gids = model.encode_groups("country=NG", n)
    alpha = np.float32(0.1)
    # the model's own compiled functions: RewardModel.jitted keys them by the RewardNet method's name
    mean_fn = model.jitted("rewards", RewardNet.rewards)
    risk_fn = model.jitted("reward_quantiles", RewardNet.reward_quantiles)
    calls["jitted mean"] = lambda: jax.block_until_ready(mean_fn(state, inputs, gids))
    calls["jitted risk"] = lambda: jax.block_until_ready(risk_fn(state, inputs, gids, alpha))
    for fn in calls.values():
        fn()  # compile
    times = {k: [] for k in calls}
    for _ in range(args.repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}  # the least disturbed run: steadier under load
    print(f"{args.rows} responses, head {args.head}, median of {args.repeats} interleaved runs; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, t in med.items():
        print(f"  {name:16s} {t * 1000:8.2f} ms")
    print(f"  ratio risk/mean: score {med['score risk'] / med['score mean']:.3f}, "
          f"all groups {med['all groups risk'] / med['all groups mean']:.3f}, "
          f"compiled call alone ({n} rows) {med['jitted risk'] / med['jitted mean']:.3f}")
    print(f"  ratio risk/mean of the fastest runs: score {low['score risk'] / low['score mean']:.3f}, "
          f"all groups {low['all groups risk'] / low['all groups mean']:.3f}, "
          f"compiled call alone {low['jitted risk'] / low['jitted mean']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
