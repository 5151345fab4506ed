"""``pluralrm train --resume RUN_DIR``: the saved config alone; --set only for resume-safe keys
(named when refused); a finished run is left alone (exit 0) or extended; checkpoint cadence
relative to the run's length."""
import json
import sys
from pathlib import Path

import pytest

from pluralrm.cli import main
from pluralrm.errors import ConfigError
from pluralrm.train.config import CheckpointConfig, checkpoint_interval, load_config, resume_config

sys.path.insert(0, str(Path(__file__).parent))
from tiny_run import TINY_OVERRIDES, make_dataset  # noqa: E402


def test_checkpoint_interval_is_relative_to_the_run():
    assert checkpoint_interval(CheckpointConfig(), 2000) == 200  # auto: every 10%
    assert checkpoint_interval(CheckpointConfig(), 7) == 1
    assert checkpoint_interval(CheckpointConfig(every=250), 2000) == 250
    assert checkpoint_interval(CheckpointConfig(every=250), 150) == 15  # else nothing before the end
    assert checkpoint_interval(CheckpointConfig(every=0), 150) == 0  # explicitly off
    assert load_config(None).checkpoint.every == "auto"
    with pytest.raises(ConfigError, match="checkpoint.every must be a number of steps or auto"):
        load_config(None, ["checkpoint.every=often"])


def test_resume_config_allows_only_safe_keys(tmp_path):
    from pluralrm.train.config import config_to_yaml

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(config_to_yaml(load_config(None, ["train.steps=100", "optimizer.lr=0.01"])))
    config = resume_config(str(run), ["train.steps=300", "train.log_every=3", "eval.every=10"])
    assert (config.train.steps, config.train.log_every, config.optimizer.lr) == (300, 3, 0.01)
    assert Path(config.run_dir) == run  # wherever the run was moved to
    with pytest.raises(ConfigError, match=r"--set optimizer.lr cannot change when resuming .*could change the result"):
        resume_config(str(run), ["optimizer.lr=0.1"])
    with pytest.raises(ConfigError, match=r"train.steps can only grow when resuming \(the run was set to 100\)"):
        resume_config(str(run), ["train.steps=50"])
    with pytest.raises(ConfigError, match="no config.yaml there"):
        resume_config(str(tmp_path), [])


@pytest.mark.slow
def test_train_resume_run_dir_alone(tmp_path, capsys):
    run = str(tmp_path / "run")
    train, test = make_dataset(300)
    train.to_json(tmp_path / "prefs.jsonl")
    test.to_json(tmp_path / "test.jsonl")
    data = [f"data.path={tmp_path / 'prefs.jsonl'}", f"data.eval_path={tmp_path / 'test.jsonl'}"]
    sets = [a for o in TINY_OVERRIDES + ["train.steps=6", *data] for a in ("--set", o)]
    assert main(["train", *sets, "--out", run]) == 0
    capsys.readouterr()

    assert main(["train", "--resume", run]) == 0  # finished: left alone, exit 0, data not even loaded
    err = capsys.readouterr().err
    assert "already finished at step 6" in err and "loading" not in err
    # the same through fit itself (--config + --resume)
    cfg0 = tmp_path / "c0.yaml"
    cfg0.write_text((tmp_path / "run" / "config.yaml").read_text())
    assert main(["train", "--config", str(cfg0), "--resume", run]) == 0
    assert "already finished at step 6" in capsys.readouterr().err

    assert main(["train", "--resume", run, "--set", "loss.type=davidson"]) == 1
    assert "--set loss.type cannot change when resuming" in capsys.readouterr().err

    assert main(["train", "--resume", run, "--set", "train.steps=9", "--set", "train.log_every=3"]) == 0
    out = capsys.readouterr()
    assert "resumed" in out.err and "at step 6" in out.err
    assert "applying --set train.steps=9" in out.err
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 9
    assert "train:\n  steps: 9" in (tmp_path / "run" / "config.yaml").read_text().replace("\r", "")

    # --config with --resume still works when it matches but for safe keys
    cfg = tmp_path / "c.yaml"
    cfg.write_text((tmp_path / "run" / "config.yaml").read_text())
    assert main(["train", "--config", str(cfg), "--resume", run, "--set", "train.steps=10"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 10
    assert main(["train", "--config", str(cfg), "--resume", run, "--set", "train.steps=12", "--set", "optimizer.lr=0.5"]) == 1
    assert "config differs from the saved one at ['optimizer.lr']" in capsys.readouterr().err
