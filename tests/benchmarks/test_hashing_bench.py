"""hashing_bench's trace reader and summary on hand-made inputs (the runs themselves are
measurements: `python benchmarks/hashing_bench.py`)."""
import gzip
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

from hashing_bench import summary, xla_op_times  # noqa: E402


def test_op_times_per_step_count_loop_bodies_once_and_name_their_source(tmp_path):
    meta = [{"ph": "M", "name": "thread_name", "pid": 1, "tid": t, "args": {"name": n}}
            for t, n in ((1, "tf_XLAEigen/123"), (2, "python"))]
    spans = [("while.7", 1, 900), ("gather.1", 1, 600), ("gather.1", 1, 400), ("zeros", 1, 300),
             ("ThunkExecutor::Execute", 1, 5000), ("np.asarray", 2, 7000)]
    events = meta + [{"ph": "X", "name": n, "pid": 1, "tid": t, "ts": 0, "dur": d} for n, t, d in spans]
    (tmp_path / "plugins").mkdir()
    with gzip.open(tmp_path / "plugins" / "x.perfetto_trace.json.gz", "wt") as f:
        json.dump({"traceEvents": events}, f)
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "module_0001.jit_step.cpu_after_optimizations.txt").write_text(
        '  %gather.1 = f32[4,8]{1,0} fusion(%a), kind=kLoop, metadata={op_name="jit(step)/jvp()/take" x=1}\n')
    rows = xla_op_times(tmp_path, steps=2)
    assert rows[0]["ms_per_step"] == (600 + 400 + 300) / 1e3 / 2  # the loop's span and host threads left out
    by_op = {r["op"]: r for r in rows[1:]}
    assert set(by_op) == {"while.7", "gather.1", "zeros"}
    assert by_op["gather.1"]["ms_per_step"] == 0.5 and by_op["gather.1"]["source"] == "f32[4,8]{1,0} jvp()/take"


def test_summary_gives_medians_relative_to_the_first_setting():
    runs = [{"setting": "old", "batch": 64, "cmp_per_s": r, "fit_seconds": 10.0, "encode_seconds": 1.0} for r in (100, 120)]
    runs += [{"setting": "new", "batch": 256, "cmp_per_s": r, "fit_seconds": 2.0, "encode_seconds": 0.0} for r in (1000, 1200)]
    runs.append({"setting": "broken", "error": "exit 1: boom"})
    text = summary(runs)
    assert "old (batch 64): 110 cmp/s" in text and "= 10.0x" in text and "broken: failed" in text


def test_featurize_child_hashes_every_batch_and_reports_a_rate(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from hashing_bench import child_featurize

    n = 40
    pq.write_table(pa.table({"prompt": [f"prompt {i % 7}" for i in range(n)],
                             "chosen": [f"chosen answer {i}" for i in range(n)],
                             "rejected": [f"rejected answer {i}" for i in range(n)]}), tmp_path / "d.parquet")
    out = child_featurize(str(tmp_path / "d.parquet"), 8, 3)
    assert out["batch"] == 8 and out["batches"] == 3
    assert out["pairs_per_s"] > 0 and out["package"].endswith("pluralrm/__init__.py")
