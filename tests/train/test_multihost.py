"""Multi-process training for real: 2 processes on this machine join ``jax.distributed`` (CPU
collectives), each featurizing its half of every global batch and evaluating its share of the
held-out rows; both are SIGKILLed mid-run, resumed, and end with the parameters of one process
driving 2 devices."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "multihost_run.py"
STEPS = 16
EXTRA = ["train.log_every=1", "checkpoint.every=4", "eval.every=8"]


def test_processes_split_each_global_batch():
    from tiny_run import make_dataset

    from pluralrm.data.featurize import HashingFeaturizer
    from pluralrm.data.schema import GroupSchema
    from pluralrm.train.batches import BatchStream, encode_comparisons

    train, _ = make_dataset(100)
    encoded = encode_comparisons(train, GroupSchema.from_dataset(train, ["country"]), ())
    featurizer = HashingFeaturizer(num_buckets=64, max_length=16, buckets=(16,))
    whole = BatchStream(encoded, featurizer, 8, seed=1)
    halves = [BatchStream(encoded, featurizer, 8, seed=1, process=(i, 2)) for i in range(2)]
    for position in [(0, 0), (0, 3), (2, 1)]:
        np.testing.assert_array_equal(np.concatenate([h.rows(position) for h in halves]), whole.rows(position))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(run_dir, processes, devices, resume=False):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return [
        subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), str(STEPS), str(i), str(processes), str(port),
                          *EXTRA, *(["--resume"] if resume else [])],
                         env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(processes)
    ]


def _finish(procs, timeout=400):
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


def _logged_step(run_dir) -> int:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return 0
    return max((json.loads(x)["step"] for x in path.read_text().splitlines() if x.strip().endswith("}")), default=0)


@pytest.mark.slow
def test_two_processes_killed_and_resumed_match_one_process_with_two_devices(tmp_path):
    reference = _launch(tmp_path / "ref", processes=1, devices=2)
    ref_out = _finish(reference)[0]

    victims = _launch(tmp_path / "run", processes=2, devices=1)
    deadline = time.time() + 300
    while _logged_step(tmp_path / "run") < 10:
        assert time.time() < deadline and all(p.poll() is None for p in victims), [p.communicate()[0][-2000:] for p in victims]
        time.sleep(0.05)
    for p in victims:
        p.send_signal(signal.SIGKILL)
    for p in victims:
        p.communicate(timeout=60)
    saved = sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and max(saved) < STEPS

    outs = _finish(_launch(tmp_path / "run", processes=2, devices=1, resume=True))
    assert all(f"DONE process {i}/2 devices 2 steps {STEPS}" in out for i, out in enumerate(outs)), outs
    assert "resumed" in outs[0]

    ref, got = dict(np.load(f"{tmp_path / 'ref'}.npz")), dict(np.load(f"{tmp_path / 'run'}.npz"))
    # the saved checkpoint (written by 2 processes) loads on this 1-device process and holds them
    from test_trainer import params_of

    saved = params_of(tmp_path / "run")
    for k in ref:
        np.testing.assert_array_equal(saved[k], got[k], err_msg=k)
    assert ref.keys() == got.keys()
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=2e-4, atol=2e-5, err_msg=k)
    # the held-out metrics, each process evaluating half of the rows, equal the reference's
    final = [line for line in ref_out.splitlines() if line.startswith("DONE")][0].split(" eval ")[1]
    assert all(final.split("'nll'")[0] in out for out in outs), (final, outs)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sorted(r["step"] for r in records if r["split"] == "train") == list(range(1, STEPS + 1))  # one writer
