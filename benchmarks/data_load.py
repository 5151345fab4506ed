"""Loading throughput: ``pluralrm.data.load`` (read + validate) against ``datasets``' own readers
(read only), on the same synthetic comparison files, printed as ratios from one run.

    python benchmarks/data_load.py [--rows 1000000] [--dir /tmp/pluralrm-bench]

Rows have a prompt, two 30-word responses, a label (1 / 0.5 / 0.8), an annotator and two group
attributes. Peers: ``datasets.Dataset.from_parquet / from_csv / from_json`` with a fresh cache
directory (they write Arrow cache files; we keep the table in memory).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq


def synthetic(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array(["the", "model", "answer", "is", "kind", "wrong", "helpful", "long", "short", "culture"])

    def texts(k: int) -> list[str]:
        return [" ".join(row) for row in words[rng.integers(0, len(words), size=(n, k))]]

    return pa.table({
        "prompt": texts(12), "chosen": texts(30), "rejected": texts(30),
        "label": rng.choice([1.0, 0.5, 0.8], n), "annotator_id": [f"a{i}" for i in rng.integers(0, 5000, n)],
        "weight": np.ones(n), "country": rng.choice(["NG", "US", "IN", "BR"], n),
        "language": rng.choice(["en", "yo"], n),
    })


def write(table: pa.Table, directory: Path) -> dict[str, Path]:
    paths = {"parquet": directory / "c.parquet", "csv": directory / "c.csv", "jsonl": directory / "c.jsonl"}
    pq.write_table(table, paths["parquet"])
    pa_csv.write_csv(table, paths["csv"])
    with open(paths["jsonl"], "w") as f:
        for batch in table.to_batches(65536):
            f.writelines(json.dumps(r) + "\n" for r in batch.to_pylist())
    return paths


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    from datasets import Dataset

    from pluralrm.data import load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="pluralrm-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    paths = write(synthetic(args.rows), directory)
    peers = {"parquet": Dataset.from_parquet, "csv": Dataset.from_csv, "jsonl": Dataset.from_json}
    from machine import code_version

    print(f"{args.rows:,} rows; seconds (lower is better); {code_version()}")
    print(f"{'format':<8} {'MB':>6} {'pluralrm.load':>14} {'datasets':>9} {'ratio':>6}")
    for fmt, path in paths.items():
        ours = seconds(lambda: load(path, groups=["country", "language"]))
        cache = tempfile.mkdtemp(prefix="hf-cache-", dir=directory)
        theirs = seconds(lambda: peers[fmt](str(path), cache_dir=cache))
        print(f"{fmt:<8} {path.stat().st_size / 1e6:>6.0f} {ours:>14.3f} {theirs:>9.3f} {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
