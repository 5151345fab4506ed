"""Smoke tests: every benchmark script runs at --quick sizes and prints its tables. No timing
is asserted (benchmarks are measurements, not tests); the FLOP counts are checked against
closed forms."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import flops  # noqa: E402
import numpy as np  # noqa: E402
from steptime import StepClock, steady_rate  # noqa: E402


def run(script: str, *args: str, timeout: int = 600) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_encoder_flops_match_the_closed_form():
    # per layer: 8 L d^2 (QKV + output) + 4 L^2 d (scores + values) + 4 L d f (MLP)
    length, d, f = 128, 384, 1536
    layer = flops.encoder_layer_flops(length, d, f)
    assert sum(layer.values()) == 8 * length * d * d + 4 * length * length * d + 4 * length * d * f
    shape = flops.EncoderShape(6, d, f)
    forward = flops.encoder_forward_flops(shape, 32, length)
    assert forward == 32 * 6 * sum(layer.values())
    step = flops.reward_model_train_flops(shape, 16, length, 384)
    assert step == 3 * (forward + 32 * (2 * d * 384 + 2 * 384))
    assert flops.hashing_forward_flops(100, 64, (128,), 64) == 100 * 64 + 2 * 64 * 128 + 2 * 128 * 64 + 2 * 64
    assert flops.mfu(2e9, 0.5, 8e9) == pytest.approx(0.5)


def test_steady_rate_uses_the_window_after_skip():
    record = {"stamps": [0.0, 10.0, 11.0, 12.0, 13.0], "lengths": [64, 64, 128, 128, 128], "steps": 5, "batch_size": 8}
    rate, seconds, lengths = steady_rate(record, skip=1)
    assert seconds == pytest.approx(1.0) and rate == pytest.approx(8.0)
    assert lengths == [64, 128, 128]
    with pytest.raises(ValueError):
        steady_rate(record, skip=4)


def test_step_clock_keeps_sequence_lengths_only_when_asked():
    # hashed ids (0 = padding) of 3 pairs, the last a weight-0 padding row
    ids = np.zeros((3, 2, 8), np.int32)
    ids[0, 0, :5] = ids[0, 1, :3] = ids[1, 0, :8] = ids[1, 1, :1] = ids[2, 0, :4] = 7
    batch = {"inputs": {"ids": ids}, "weight": np.array([1.0, 1.0, 0.0], np.float32)}
    lean, full = StepClock(), StepClock(sequence_lengths=True)
    for step in range(3):
        assert lean(step, batch) is batch and full(step, batch) is batch
    assert lean.sequence_lengths == [] and lean.rows == [6] * 3 and lean.lengths == [8] * 3
    record = full.to_dict(batch_size=3)
    assert record["sequence_lengths"] == [[5, 3, 8, 1]] * 3
    json.dumps(record)  # what the benchmarks write


def test_steady_rate_times_pluralrm_between_read_points_not_prefetch_stamps():
    # the prefetch thread stamped every batch at once (it runs ahead); the read points say 2 s/step
    record = {"log_points": [(2, 10.0), (4, 14.0), (6, 18.0)], "stamps": [0.0] * 8, "lengths": [64] * 8,
              "steps": 8, "batch_size": 8}
    rate, seconds, lengths = steady_rate(record, skip=3)
    assert seconds == pytest.approx(2.0) and rate == pytest.approx(4.0) and lengths == [64, 64]
    rate, seconds, _ = steady_rate(record, skip=2)
    assert seconds == pytest.approx(2.0)
    with pytest.raises(ValueError, match="log_every"):
        steady_rate(record, skip=5)


@pytest.mark.slow
def test_scaling_bench_quick(tmp_path):
    out = run("scaling_bench.py", "--quick", "--out", str(tmp_path))
    assert "score_all_groups G=  100" in out and "8 device(s)" in out
    results = json.loads((tmp_path / "scaling-quick.json").read_text())
    assert {"throughput", "groups", "memory", "devices"} <= results.keys()
    assert all("error" not in r["train"] for r in results["memory"])
    assert (tmp_path / "groups-quick.png").is_file()


@pytest.mark.slow
def test_heads_bench_quick(tmp_path):
    out = run("heads_bench.py", "--quick", "--heads", "pooled,conditioned,values", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "heads-quick.json").read_text())["heads"]
    assert [r["head"] for r in rows] == ["pooled", "conditioned", "values"]
    assert all(0.0 <= r["final_accuracy"] <= 1.0 and r["converged_step"] >= 1 for r in rows)
    assert "conv. step" in out


@pytest.mark.slow
@pytest.mark.skipif(not (BENCH / ".venv-trl" / "bin" / "python").exists(),
                    reason="benchmarks/.venv-trl is absent (bash benchmarks/setup_trl_venv.sh)")
@pytest.mark.skipif(not (BENCH.parent.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl").exists(),
                    reason="the HH-RLHF sample trl_bench.py trains on is absent")
@pytest.mark.parametrize("precision", ["float32", "bf16-mixed"])
def test_trl_bench_quick(precision):
    out = run("trl_bench.py", "--quick", "--precision", precision)
    assert "pluralrm / TRL" in out and "median ratio" in out and "torch / pluralrm" in out
    assert f"precision {precision} on both sides, TRL gradient checkpointing off" in out


@pytest.mark.slow
def test_scoring_bench_small():
    out = run("scoring_bench.py", "--responses", "64", "--all-groups-responses", "32", "--requests", "40",
              "--concurrency", "4")
    assert "commit " in out and "responses/s" in out
    assert "MiniLM-L6 transformer backbone" in out and "skipped" not in out  # the transformer row is measured
    assert all(f"  {g:>5}  " in out for g in (1, 10, 100, 1000))
    assert "wide hashing backbone" in out


@pytest.mark.slow
def test_calibration_bench_small():
    out = run("calibration_bench.py", "--raters", "40", "--units", "400", "--rows", "4000", "--replicates", "50")
    assert "commit " in out
    assert "Krippendorff's alpha" in out and "disagreement retention" in out and "(end:" in out


@pytest.mark.slow
def test_data_load_small(tmp_path):
    out = run("data_load.py", "--rows", "2000", "--dir", str(tmp_path))
    assert "commit " in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in ("parquet", "csv", "jsonl")]
    assert sorted(r[0] for r in rows) == ["csv", "jsonl", "parquet"]
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows)  # both loaders timed on each format
