"""The reward server under bounded load, for docs/reliability.md: errors, exact answers, p99
latency, memory drift, and whether bad requests slow the good ones.

    python benchmarks/server_load.py [--requests 20000] [--concurrency 64] [--bad 0.1] [--out F.json]

Starts ``pluralrm serve`` on a loopback port with a conditioned hashing model (random
initialisation, seeded; 6 countries of the bundled society), then sends a fixed, seeded mix of
requests from an httpx async client at a fixed concurrency:

- good requests (90% by default): ``/score`` for one group (1–4 rows), ``/score`` with
  ``all_groups`` and an aggregate rule, ``/compare`` for every group — drawn from a pool of 256
  distinct bodies whose answers were computed beforehand with the Python API
  (``RewardModel.score``, ``score_all_groups`` + ``pluralrm.score.aggregate``,
  ``predict_preference``); every answer is compared with them (max abs difference reported,
  1e-5 allowed);
- bad requests (``--bad``): malformed bodies (422 expected), bodies over the byte limit and
  lists over the item limit (413 expected).

Reports requests served, errors (a status other than the expected one, a transport error, or a
wrong answer), p50/p99 latency of the good requests, the server's RSS after the first 10% of
requests and at the end (drift), and the same load run without bad requests (p99 ratio: do bad
requests slow the good ones?). A warm-up pass of a tenth of the requests runs first, unreported
(it compiles the batch shapes the load produces). ``run_load`` is also what ``tests/serve/test_load.py`` calls.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("the answer is kind wrong helpful long short culture elders greet respect family festival food "
         "language village city music tradition honest polite direct").split()
COUNTRIES = ("NG", "US", "IN", "BR", "JP", "DE")
MAX_ITEMS, MAX_BODY = 64, 32_000


def make_model(directory: Path, seed: int = 0) -> Path:
    """Saves a conditioned hashing-backbone model (random init) with a 6-country schema."""
    from pluralrm.data.schema import GroupSchema
    from pluralrm.models import BackboneConfig, HeadConfig, ModelConfig, RewardModel

    schema = GroupSchema.from_columns({"country": [c for i, c in enumerate(COUNTRIES) for _ in range(6 - i)]})
    config = ModelConfig(backbone=BackboneConfig(num_buckets=1 << 14, embed_dim=32, hidden_dims=(64,)),
                         head=HeadConfig(type="conditioned", hidden_dim=32))
    return RewardModel.create(config, schema, seed=seed).save(Path(directory) / "model")


def _text(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, size=n))


def good_pool(size: int, seed: int) -> list[tuple[str, dict]]:
    """Distinct valid (route, body) pairs."""
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(size):
        kind = i % 4
        rows = int(rng.integers(1, 5))
        prompts = [_text(rng, 6)] * rows if kind == 2 else [_text(rng, 6) for _ in range(rows)]
        responses = [_text(rng, int(rng.integers(3, 12))) for _ in range(rows)]
        if kind in (0, 1):
            pool.append(("/score", {"prompts": prompts, "responses": responses,
                                    "groups": {"country": COUNTRIES[int(rng.integers(len(COUNTRIES)))]}}))
        elif kind == 2:
            rule = ("mean", "worst", "quantile")[i % 3]
            body = {"prompts": prompts, "responses": responses, "all_groups": True, "aggregate": rule}
            if rule == "quantile":
                body["q"] = 0.25
            pool.append(("/score", body))
        else:
            pool.append(("/compare", {"prompt": prompts[0], "a": responses[0], "b": _text(rng, 5)}))
    return pool


def bad_requests(seed: int) -> list[tuple[str, bytes, int]]:
    """(route, raw body, expected status): malformed (422) and oversized (413) requests."""
    rng = np.random.default_rng(seed)
    long_rows = [_text(rng, 8) for _ in range(MAX_ITEMS + 1)]
    huge = "x" * 400
    cases = [
        ("/score", {"prompts": ["p"], "responses": [3]}, 422),
        ("/score", {"prompts": ["p", "q"], "responses": ["r"]}, 422),
        ("/score", {"prompts": ["p"], "responses": ["r"], "aggregate": "worst"}, 422),
        ("/compare", {"prompt": "p", "a": "x"}, 422),
        ("/score", {"prompts": long_rows, "responses": long_rows}, 413),
        ("/score", {"prompts": [huge] * 50, "responses": [huge] * 50}, 413),  # ~40 kB > MAX_BODY
    ]
    out = [(route, json.dumps(body).encode(), status) for route, body, status in cases]
    out.append(("/score", b'{"prompts": ["p"], "responses": ', 422))  # cut JSON
    return out


def expected_answers(model_dir: Path, pool: list[tuple[str, dict]]) -> list[dict]:
    """What the Python API answers for each pool body (the server must answer the same)."""
    from pluralrm.models import RewardModel
    from pluralrm.score import aggregate

    model = RewardModel.load(model_dir)
    out = []
    for route, body in pool:
        if route == "/compare":
            out.append({"p_a_over_b": model.predict_preference(body["prompt"], body["a"], body["b"], groups="all")[0]})
        elif body.get("all_groups"):
            table, _ = model.score_all_groups(body["prompts"], body["responses"])
            params = {"q": body["q"]} if "q" in body else {}
            out.append({"scores": table, "aggregate": aggregate(table, body["aggregate"], sets=body["prompts"], **params)})
        else:
            out.append({"scores": model.score(body["prompts"], body["responses"], groups=body["groups"])})
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process (``VmRSS``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class ServerProcess:
    """``pluralrm serve --port 0`` in a subprocess, with this script's limits."""

    def __init__(self, model_dir: Path, *extra: str):
        import httpx

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pluralrm", "serve", "--checkpoint", str(model_dir), "--port", "0",
             "--max-items", str(MAX_ITEMS), "--max-body-bytes", str(MAX_BODY), "--no-request-log", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)
        if not lines or "listening on" not in lines[0]:
            self.proc.kill()
            raise RuntimeError(f"the server did not start: {self.proc.stderr.read()[-2000:]}")
        self.url = lines[0].strip().rsplit(" ", 1)[1]
        deadline = time.monotonic() + 60
        while httpx.get(f"{self.url}/health", timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the server does not answer /health")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)
        return self.proc.returncode


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    bad_fraction: float
    good: int = 0
    bad: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    max_abs_diff: float = 0.0
    seconds: float = 0.0
    requests_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    bad_p99_ms: float = 0.0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_drift_mb: float = 0.0
    status_counts: dict[str, int] = field(default_factory=dict)


def _compare(answer: dict, expected: dict) -> float:
    diff = 0.0
    for key, value in expected.items():
        got = np.asarray(answer[key], np.float64)
        want = np.asarray(value, np.float64)
        if got.shape != want.shape:
            return float("inf")
        diff = max(diff, float(np.max(np.abs(got - want))) if want.size else 0.0)
    return diff


async def _fire(url: str, plan: list, pool: list, expected: list, bad: list, concurrency: int, pid: int,
                result: LoadResult, tolerance: float) -> None:
    import httpx

    latencies_good: list[float] = []
    latencies_bad: list[float] = []
    queue = iter(enumerate(plan))
    marks = {max(1, len(plan) // 10)}

    async def worker(client: httpx.AsyncClient) -> None:
        for i, (is_bad, k) in queue:
            if i in marks:
                result.rss_start_mb = rss_mb(pid)
            route, body, status = bad[k] if is_bad else (pool[k][0], json.dumps(pool[k][1]).encode(), 200)
            t0 = time.perf_counter()
            try:
                answer = await client.post(route, content=body, headers={"content-type": "application/json"})
            except httpx.HTTPError as e:
                result.errors += 1
                result.error_examples = (result.error_examples + [f"{route}: {type(e).__name__}: {e}"])[:5]
                continue
            elapsed = time.perf_counter() - t0
            key = str(answer.status_code)
            result.status_counts[key] = result.status_counts.get(key, 0) + 1
            (latencies_bad if is_bad else latencies_good).append(elapsed)
            problem = None
            try:
                payload = answer.json()
            except ValueError:
                payload, problem = {}, f"status {answer.status_code}, not JSON: {answer.text[:200]!r}"
            if problem:
                pass
            elif answer.status_code != status:
                problem = f"status {answer.status_code}, expected {status}: {answer.text[:200]}"
            elif is_bad and not payload.get("error"):
                problem = "a refusal without an error message"
            elif not is_bad:
                diff = _compare(payload, expected[k])
                result.max_abs_diff = max(result.max_abs_diff, diff)
                if not diff <= tolerance:
                    problem = f"answer differs from the Python API by {diff}"
            if problem:
                result.errors += 1
                result.error_examples = (result.error_examples + [f"{route}: {problem}"])[:5]
            result.bad += is_bad
            result.good += not is_bad

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - t0
    good = np.asarray(latencies_good) * 1000
    result.p50_ms, result.p99_ms = (float(np.percentile(good, 50)), float(np.percentile(good, 99))) if good.size else (0, 0)
    if latencies_bad:
        result.bad_p99_ms = float(np.percentile(np.asarray(latencies_bad) * 1000, 99))


def run_load(model_dir: Path, requests: int, concurrency: int, bad_fraction: float = 0.1, seed: int = 0,
             tolerance: float = 1e-5, server: ServerProcess | None = None) -> LoadResult:
    """Sends ``requests`` requests (``bad_fraction`` of them bad) at ``concurrency`` and checks
    every answer; starts a server for ``model_dir`` unless one is given."""
    pool = good_pool(256, seed)
    expected = expected_answers(model_dir, pool)
    bad = bad_requests(seed)
    rng = np.random.default_rng(seed + 1)
    is_bad = rng.random(requests) < bad_fraction
    plan = [(bool(b), int(rng.integers(len(bad) if b else len(pool)))) for b in is_bad]
    own = server is None
    server = server or ServerProcess(model_dir)
    result = LoadResult(requests, concurrency, bad_fraction)
    try:
        asyncio.run(_fire(server.url, plan, pool, expected, bad, concurrency, server.proc.pid, result, tolerance))
        result.rss_end_mb = rss_mb(server.proc.pid)
    finally:
        if own:
            code = server.stop()
            if code != 0:
                result.errors += 1
                result.error_examples.append(f"the server exited with {code}")
    result.rss_drift_mb = result.rss_end_mb - result.rss_start_mb
    result.requests_per_s = requests / result.seconds if result.seconds else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--bad", type=float, default=0.1, help="fraction of malformed/oversized requests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    from machine import describe

    print(f"# {describe()}")
    print(f"# python benchmarks/server_load.py --requests {args.requests} --concurrency {args.concurrency} "
          f"--bad {args.bad}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model(Path(tmp))
        server = ServerProcess(model_dir)
        try:
            # warm-up (not reported): the batch shapes the load produces are compiled here
            run_load(model_dir, max(500, args.requests // 10), args.concurrency, args.bad, args.seed + 7, server=server)
            clean = run_load(model_dir, args.requests, args.concurrency, 0.0, args.seed, server=server)
            with_bad = run_load(model_dir, args.requests, args.concurrency, args.bad, args.seed, server=server)
        finally:
            code = server.stop()
    rows = {"with bad requests": with_bad, "good requests only": clean}
    print(f"{'run':<20} {'requests':>8} {'good':>6} {'bad':>5} {'errors':>6} {'req/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'bad p99':>7} {'RSS MiB':>8} {'drift':>6} {'max|diff|':>9}")
    for name, r in rows.items():
        print(f"{name:<20} {r.requests:>8} {r.good:>6} {r.bad:>5} {r.errors:>6} {r.requests_per_s:>7.0f} "
              f"{r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.bad_p99_ms:>7.1f} {r.rss_end_mb:>8.0f} {r.rss_drift_mb:>+6.1f} "
              f"{r.max_abs_diff:>9.1e}")
    print(f"p99 of good requests with / without bad ones mixed in: {with_bad.p99_ms / clean.p99_ms:.2f}x; "
          f"server exit code {code}")
    for r in rows.values():
        for example in r.error_examples:
            print(f"error: {example}")
    if args.out:
        from pluralrm.provenance import provenance

        Path(args.out).write_text(json.dumps({**provenance(), "machine": describe(), **{k: asdict(v) for k, v in rows.items()}}, indent=1))
    if any(r.errors for r in rows.values()) or code != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
