"""Scoring throughput, the cost of scoring every group at once, and the reward server under load,
printed as ratios measured in one run.

    python benchmarks/scoring_bench.py [--responses 4096] [--requests 2000] [--concurrency 16] [--out F.json]

1. ``RewardModel.score`` throughput (responses/s) with the default hashing backbone (and the
   MiniLM transformer backbone when ``pluralrm.models.transformer`` is in this build).
2. ``score_all_groups`` with G = 1, 10, 100, 1000 groups (schemas built with that many groups,
   same texts, same batch size) relative to G = 1, next to the naive alternative of one
   ``score`` call per group.
3. ``pluralrm serve`` on a loopback port: a fixed number of ``POST /score`` requests (4
   responses each) from an httpx async client at a fixed concurrency; throughput and p50/p99
   latency with micro-batching, and with batching off (``--max-batch 1``) as the peer, for the
   default hashing backbone and a wide one (where the model call, not featurisation, dominates).

Texts are fresh for every timed pass (the hashing featurizer caches texts it has seen), and
every timed pass follows a warm-up pass of the same shapes (compilation is not timed).
``--out`` also writes every figure as JSON with the machine, the load and the code's exact commit
and dirty flag (``pluralrm.provenance``), so a quoted figure can be traced to the code behind it.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = np.array("the model answer is kind wrong helpful long short culture elders greet respect family "
                 "festival food language village city music tradition honest polite direct".split())


def texts(n: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(row) for row in WORDS[rng.integers(0, len(WORDS), size=(n, words))]]


def schema_with(groups: int):
    from pluralrm.data.schema import GroupSchema

    values = tuple(f"g{i}" for i in range(groups))
    return GroupSchema(("group",), (values,), tuple((v,) for v in values), tuple(range(groups, 0, -1)))


def hashing_model(groups: int, wide: bool = False):
    """The default hashing backbone (or a wide one: 256-d embeddings, MLP 2048-2048) + conditioned head."""
    from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

    backbone = BackboneConfig(embed_dim=256, hidden_dims=(2048, 2048)) if wide else BackboneConfig()
    return RewardModel.create(ModelConfig(backbone=backbone, head=HeadConfig(type="conditioned")), schema_with(groups))


def timed(fn, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls (seconds); fn gets the repeat index."""
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        fn(r)
        best = min(best, time.perf_counter() - start)
    return best


def throughput(model, n: int, seed: int) -> float:
    """responses/s of ``model.score`` over n fresh (prompt, response) pairs."""
    prompts, responses = texts(n, 12, seed), texts(n, 40, seed + 1)
    model.score(prompts, responses, groups={model.schema.attributes[0]: model.schema.vocabularies[0][0]})  # warm-up
    seconds = timed(lambda r: model.score(texts(n, 12, seed + 10 + r), texts(n, 40, seed + 20 + r),
                                          groups={model.schema.attributes[0]: model.schema.vocabularies[0][0]}))
    return n / seconds


def all_groups_cost(n: int, sizes: list[int]) -> list[tuple[int, float, float | None]]:
    """(G, seconds of score_all_groups, seconds of G separate score calls or None) per G."""
    out = []
    for g in sizes:
        model = hashing_model(g)
        fresh = lambda r: (texts(n, 12, 100 + r), texts(n, 40, 200 + r))  # noqa: E731
        model.score_all_groups(*fresh(-1))
        t_all = timed(lambda r: model.score_all_groups(*fresh(r)))
        t_loop = None
        if g <= 100:
            def loop(r):
                p, s = fresh(1000 + r)  # texts the all-groups passes did not see (and cache)
                for v in model.schema.vocabularies[0]:
                    model.score(p, s, groups={"group": v})
            loop(-1)
            t_loop = timed(loop, repeats=1)
        out.append((g, t_all, t_loop))
    return out


def start_server(model_dir: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "pluralrm", "serve", "--checkpoint", str(model_dir), "--port", "0",
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    url = line.rsplit(" ", 1)[1]
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the server never answered /health")


async def load(url: str, requests: int, concurrency: int, seed: int) -> tuple[float, np.ndarray]:
    """Sends ``requests`` POST /score at ``concurrency``; returns (wall seconds, latencies)."""
    import httpx

    prompts, responses = texts(requests, 12, seed), texts(4 * requests, 40, seed + 1)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    latencies = np.zeros(requests)

    async def worker(client):
        while not queue.empty():
            i = queue.get_nowait()
            body = {"prompts": [prompts[i]] * 4, "responses": responses[4 * i: 4 * i + 4],
                    "groups": {"group": f"g{i % 8}"}}
            start = time.perf_counter()
            answer = await client.post("/score", json=body)
            latencies[i] = time.perf_counter() - start
            answer.raise_for_status()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return time.perf_counter() - start, latencies


def server_runs(requests: int, concurrency: int, wide: bool) -> list[tuple[str, float, np.ndarray]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = hashing_model(8, wide).save(Path(tmp) / "model")
        for name, extra in (("micro-batching (max 256 rows, 5 ms)", ()),
                            ("no batching (--max-batch 1)", ("--max-batch", "1", "--max-wait-ms", "0"))):
            proc, url = start_server(model_dir, *extra)
            try:
                asyncio.run(load(url, min(200, requests), concurrency, seed=7))  # warm-up: compile batch shapes
                wall, latencies = asyncio.run(load(url, requests, concurrency, seed=11))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            out.append((name, wall, latencies))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=4096, help="responses per timed scoring pass")
    parser.add_argument("--all-groups-responses", type=int, default=1024, help="responses per score_all_groups pass")
    parser.add_argument("--requests", type=int, default=2000, help="server requests (4 responses each)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", help="also write the figures, machine and commit as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    from machine import code_version, describe

    from pluralrm.provenance import provenance

    code, machine = provenance(), describe()  # before the run: the code and the load it started under
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores; {code_version()}")
    report: dict = {"command": " ".join(["python", "benchmarks/scoring_bench.py", *sys.argv[1:]]), **code,
                    "machine": machine, "args": vars(args)}

    print("\n1. RewardModel.score throughput (conditioned head, batch 256)")
    base = throughput(hashing_model(8), args.responses, seed=1)
    report["score_responses_per_s"] = {"hashing": base}
    print(f"  hashing backbone (65,536 buckets, 64-d, MLP 128):  {base:10,.0f} responses/s   1.00x")
    if importlib.util.find_spec("pluralrm.models.transformer") is None:
        print("  MiniLM transformer backbone: skipped (pluralrm.models.transformer is not in this build)")
    else:
        from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

        config = ModelConfig(backbone=BackboneConfig(type="transformer", path="minilm-l6", max_length=128,
                                                     buckets=(32, 64, 128)), head=HeadConfig(type="conditioned"))
        minilm = RewardModel.create(config, schema_with(8))
        rate = throughput(minilm, min(args.responses, 512), seed=2)
        report["score_responses_per_s"]["minilm_l6_128_tokens"] = rate
        print(f"  MiniLM-L6 transformer backbone (128 tokens):       {rate:10,.0f} responses/s   {rate / base:.3f}x")

    print(f"\n2. score_all_groups over {args.all_groups_responses} responses, relative to G = 1")
    rows = all_groups_cost(args.all_groups_responses, [1, 10, 100, 1000])
    report["all_groups"] = [{"groups": g, "all_groups_s": t_all, "score_per_group_s": t_loop} for g, t_all, t_loop in rows]
    t1 = rows[0][1]
    print(f"  {'G':>5}  {'all groups (s)':>15}  {'vs G=1':>7}  {'G score() calls (s)':>20}  {'loop / all':>10}")
    for g, t_all, t_loop in rows:
        loop = f"{t_loop:20.3f}  {t_loop / t_all:9.1f}x" if t_loop is not None else f"{'-':>20}  {'-':>10}"
        print(f"  {g:>5}  {t_all:15.3f}  {t_all / t1:6.2f}x  {loop}")

    print(f"\n3. pluralrm serve: {args.requests} POST /score (4 responses each) at concurrency {args.concurrency}, loopback")
    report["server"] = {}
    for label, wide in (("default hashing backbone", False), ("wide hashing backbone (256-d, MLP 2048-2048)", True)):
        runs = server_runs(args.requests, args.concurrency, wide)
        peer = args.requests / runs[-1][1]
        print(f"  {label}")
        print(f"  {'mode':<38} {'requests/s':>10} {'responses/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'vs peer':>8}")
        report["server"][label] = []
        for name, wall, lat in runs:
            rps = args.requests / wall
            p50, p99 = 1e3 * np.percentile(lat, 50), 1e3 * np.percentile(lat, 99)
            report["server"][label].append({"mode": name, "requests_per_s": rps, "p50_ms": p50, "p99_ms": p99})
            print(f"  {name:<38} {rps:10,.0f} {4 * rps:11,.0f} {p50:7.1f} {p99:7.1f} {rps / peer:7.2f}x")
    if args.out:
        from machine import load_average

        report["load_average_at_end"] = load_average()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.out}")

if __name__ == "__main__":
    main()
