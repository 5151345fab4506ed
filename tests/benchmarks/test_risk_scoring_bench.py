"""Smoke test: benchmarks/risk_scoring_bench.py runs and prints its ratios (no timing asserted)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_risk_scoring_bench_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "risk_scoring_bench.py"), "--rows", "64",
                           "--repeats", "1", "--head", "categorical"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "ratio risk/mean" in proc.stdout
