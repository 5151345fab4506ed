"""The whole path a user takes with a transformer reward model, through the real CLI.

For a tiny random BERT-layout encoder and a tiny random Llama-layout decoder, written as local
Hugging Face directories in the test (``tiny_models.py``; nothing is downloaded), and a small
JSONL preference file with a group column:

1. ``pluralrm train --config experiments/configs/<shipped config> --set ...`` trains a few steps
   (``conditioned_minilm.yaml`` for the encoder, ``conditioned_decoder.yaml`` -- bfloat16
   compute, remat, chat template -- for the decoder) and leaves a complete run directory;
2. ``RewardModel.load(run)`` scores, and a ``save``/``load`` round trip scores the same;
3. ``pluralrm score`` on a JSONL file writes the scores ``RewardModel.score`` gives;
4. ``pluralrm serve`` answers one ``POST /score`` with the same scores;
5. a second training run SIGKILLed after its first checkpoint and resumed with
   ``--config X --resume`` ends with bitwise the parameters and logged metrics of the
   uninterrupted run.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import jax
import numpy as np
import pytest
from flax import nnx

from pluralrm.models import RewardModel
from tests.e2e.tiny_models import comparison_rows, write_jsonl, write_tiny_model

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "experiments" / "configs"
pytestmark = pytest.mark.slow

STEPS, CHECKPOINT_EVERY = 16, 4
LAYOUTS = {"bert": "conditioned_minilm.yaml", "llama": "conditioned_decoder.yaml"}  # layout -> shipped config
TINY = [  # a few steps; one length bucket, so one compilation per program
    "model.backbone.max_length=32", "model.backbone.buckets=[32]", f"train.steps={STEPS}", "train.batch_size=8",
    "train.log_every=1", "eval.every=8", "eval.batch_size=16", f"checkpoint.every={CHECKPOINT_EVERY}",
    "checkpoint.keep_last=2", "schedule.warmup_steps=2", "optimizer.lr=1e-3", "model.head.hidden_dim=16",
]
CANDIDATES = [
    dict(prompt="what do you think about question 1", response="good answer 3 x", country="A"),
    dict(prompt="what do you think about question 1", response="bad reply 2 y", country="B"),
    dict(prompt="why is it so", response="a very fine reply", country="B"),
    dict(prompt="why is it so", response="not a good answer", country="A"),
]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.Popen:
    """``python -m pluralrm ARGS`` (this checkout's package) in ``cwd``; stdout and stderr merged."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "pluralrm", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


class Workspace:
    """One layout's model directory, data, the train command and the uninterrupted run."""

    def __init__(self, layout: str, root: Path):
        self.layout = layout
        self.model_dir = write_tiny_model(layout, root / f"tiny-{layout}")
        self.data = write_jsonl(comparison_rows(64), root / "prefs.jsonl")
        self.candidates = write_jsonl(CANDIDATES, root / "candidates.jsonl")
        self.root = root
        self.run = root / "run"
        self.reference_out = ""
        self._model: RewardModel | None = None

    @property
    def model(self) -> RewardModel:
        """``RewardModel.load(run)``, loaded once."""
        if self._model is None:
            self._model = RewardModel.load(self.run)
        return self._model

    def train(self, run_dir: Path, *extra: str) -> subprocess.Popen:
        """``pluralrm train`` run in the workspace with *relative* model and data paths, as a
        user types them; everything else (scoring, serving, loading) runs from elsewhere."""
        sets = [f"model.backbone.path={self.model_dir.name}", f"data.path={self.data.name}", *TINY]
        return cli("train", "--config", str(CONFIGS / LAYOUTS[self.layout]), "--out", str(run_dir), "--no-progress",
                   *(a for s in sets for a in ("--set", s)), *extra, cwd=self.root)


@pytest.fixture(scope="session")
def workspaces(tmp_path_factory):
    """``get(layout)``: the layout's workspace, its uninterrupted run trained on first use."""
    cache: dict[str, Workspace] = {}

    def get(layout: str) -> Workspace:
        if layout not in cache:
            workspace = Workspace(layout, tmp_path_factory.mktemp(f"e2e-{layout}"))
            workspace.reference_out = finish(workspace.train(workspace.run))
            cache[layout] = workspace
        return cache[layout]

    return get


# one xdist worker per layout (make test: --dist loadgroup), so the two layouts run side by side
@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.xdist_group(f"e2e-{name}")) for name in LAYOUTS])
def trained(request, workspaces) -> Workspace:
    return workspaces(request.param)


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def params(model: RewardModel) -> dict[str, np.ndarray]:
    """Every parameter of the model by its path."""
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in
            jax.tree_util.tree_leaves_with_path(nnx.state(model.net, nnx.Param).to_pure_dict())}


def expected_scores(model: RewardModel) -> np.ndarray:
    return model.score([c["prompt"] for c in CANDIDATES], [c["response"] for c in CANDIDATES],
                       groups=[{"country": c["country"]} for c in CANDIDATES])


# --------------------------------------------------------------------------- train
def test_train_leaves_a_complete_run(trained):
    run = trained.run
    assert re.search(r"data: .*prefs.jsonl: \d+ training, [1-9]\d* held-out comparisons", trained.reference_out), \
        trained.reference_out
    for name in ("config.yaml", "model.json", "schema.json", "annotators.json", "best.json", "metrics.jsonl",
                 "summary.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["stopped_by"] == "completed"
    assert summary["compilations"] <= len(json.loads((run / "model.json").read_text())["featurizer"]["buckets"])
    assert {g["group"] for g in summary["final_eval"]["groups"]} == {"all", "country=A", "country=B"}
    saved = sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    assert saved[-1] == STEPS and all(s % CHECKPOINT_EVERY == 0 for s in saved)
    assert all((run / "manifests" / f"{s}.json").is_file() for s in saved)
    meta = json.loads((run / "model.json").read_text())
    assert meta["config"]["backbone"]["type"] == "transformer"
    assert meta["featurizer"]["type"] == "tokenizer"
    # trained with a relative model path: stored absolute, so other working directories load it
    assert meta["config"]["backbone"]["path"] == meta["featurizer"]["path"] == str(trained.model_dir)
    assert meta["featurizer"]["template"] == ("pair" if trained.layout == "bert" else "chat")
    train_losses = [r["loss"] for r in rows_of(run / "metrics.jsonl") if r["split"] == "train"]
    assert len(train_losses) == STEPS and np.all(np.isfinite(train_losses))


# --------------------------------------------------------------------------- load, score, save
def test_load_score_and_save_round_trip(trained, tmp_path):
    model = trained.model
    scores = expected_scores(model)
    assert scores.shape == (len(CANDIDATES),) and np.all(np.isfinite(scores))
    table, labels = model.score_all_groups([c["prompt"] for c in CANDIDATES], [c["response"] for c in CANDIDATES])
    assert labels == ["country=A", "country=B"] and table.shape == (len(CANDIDATES), 2)
    own = np.array([table[i, labels.index(f"country={c['country']}")] for i, c in enumerate(CANDIDATES)])
    np.testing.assert_allclose(scores, own, atol=1e-5)
    assert not np.allclose(table[:, 0], table[:, 1]), "the conditioned head gives both groups one reward"
    # the run's weights differ from the pretrained ones: the backbone was fine-tuned
    pretrained = params(RewardModel.create(model.config, model.schema))
    moved = [k for k, v in params(model).items() if "backbone" in k and not np.array_equal(v, pretrained[k])]
    assert moved, "no backbone parameter changed in training"
    saved = model.save(tmp_path / "model")
    again = RewardModel.load(saved)
    np.testing.assert_array_equal(expected_scores(again), scores)


# --------------------------------------------------------------------------- pluralrm score
def test_score_cli_writes_the_models_scores(trained, tmp_path):
    out = tmp_path / "scores.jsonl"
    finish(cli("score", "--checkpoint", str(trained.run), "--input", str(trained.candidates),
               "--output", str(out), "--no-progress"), timeout=120)
    rows = rows_of(out)
    assert [r["response"] for r in rows] == [c["response"] for c in CANDIDATES]
    expected = expected_scores(trained.model)
    np.testing.assert_allclose([r["score"] for r in rows], expected, atol=1e-5)


# --------------------------------------------------------------------------- pluralrm serve
def test_serve_answers_one_request_with_the_models_scores(trained):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pluralrm", "serve", "--checkpoint", str(trained.run), "--port", "0"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        line = _first_line(proc, timeout=120)
        assert line.startswith("pluralrm serve: listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        body = {"prompts": [c["prompt"] for c in CANDIDATES], "responses": [c["response"] for c in CANDIDATES],
                "groups": [{"country": c["country"]} for c in CANDIDATES]}
        answer = httpx.post(f"{url}/score", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["scores"], expected_scores(trained.model), atol=1e-5)
        assert answer.json()["warnings"] == []
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not out or not out[0]:
        proc.kill()
        raise AssertionError(f"the server did not start: {proc.stderr.read()}")
    return out[0].strip()


# --------------------------------------------------------------------------- --resume after SIGKILL
def test_sigkill_after_a_checkpoint_then_resume_matches_the_uninterrupted_run(trained):
    ws = trained
    run = ws.root / "killed"
    victim = ws.train(run)
    first = run / "manifests" / f"{CHECKPOINT_EVERY}.json"  # written once that checkpoint is complete
    deadline = time.monotonic() + 240
    while not first.exists():
        assert victim.poll() is None, f"training ended before its first checkpoint: {victim.communicate()[0]}"
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    saved = max(int(p.stem) for p in (run / "manifests").glob("*.json"))
    assert saved < STEPS, f"the kill came after the last checkpoint (step {saved}); nothing was left to resume"
    resumed = finish(ws.train(run, "--resume"))
    assert f"resumed {run} at step" in resumed, resumed
    reference, after = params(RewardModel.load(ws.run, "latest")), params(RewardModel.load(run, "latest"))
    assert reference.keys() == after.keys()
    for name in reference:
        np.testing.assert_array_equal(after[name], reference[name], err_msg=name)

    def logged(r: Path) -> list[dict]:
        return [{k: v for k, v in x.items() if k != "cmp_per_s"} for x in rows_of(r / "metrics.jsonl")]

    assert logged(run) == logged(ws.run)
