"""``pluralrm explain``: the table and the JSON agree with the Python API, on a saved model (fast)
and on a small trained run checkpoint (slow)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import pluralrm.cli as cli
from pluralrm.explain import explain
from pluralrm.models import RewardModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_explain import random_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from tiny_run import make_dataset, tiny_config  # noqa: E402

PROMPT, A, B = "question 1", "good answer 3 x", "bad answer 5 y"
NAMES = ["goodness", "length", "style"]


@pytest.fixture(autouse=True)
def only_explain_command(monkeypatch):
    """Builds the parser from the explain subcommand alone (others may live on other branches)."""
    monkeypatch.setattr(cli, "COMMANDS", {"explain": cli.COMMANDS["explain"]})


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A saved values model with random parameters and named values (no training: fast)."""
    return random_model(value_names=tuple(NAMES)).save(tmp_path_factory.mktemp("explain") / "model")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from pluralrm.train import fit

    run = tmp_path_factory.mktemp("explain") / "run"
    train, test = make_dataset(n=400)
    extra = ["model.head.type=values", f"model.head.value_names={NAMES}", "checkpoint.every=20"]
    fit(tiny_config(run, 20, extra), train, test)
    return run


def table_rows(out: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header and rows (by first cell) of the first rich table in ``out``."""
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    columns = [c.strip() for c in header.strip("┃").split("┃")]
    rows = {}
    for line in out.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows.setdefault(cells[0], cells[1:])
    return columns, rows


def check_table(checkpoint, out: str) -> dict[str, list[str]]:
    columns, rows = table_rows(out)
    assert columns[:3] == ["group", "P(a≻b)", "gap"] and sorted(columns[3:]) == sorted(NAMES)
    expected = explain(RewardModel.load(checkpoint), PROMPT, A, B, groups="all")
    assert set(rows) >= {g.group for g in expected.groups}
    for g in expected.groups:
        cells = rows[g.group]
        assert float(cells[0]) == pytest.approx(g.probability, abs=5e-5)
        assert float(cells[1]) == pytest.approx(g.gap, abs=5e-5)
        by_name = {c.value: c.contribution for c in g.contributions}
        for name, cell in zip(columns[3:], cells[2:]):
            assert float(cell) == pytest.approx(by_name[name], abs=5e-5)
        assert sum(float(c) for c in cells[2:]) == pytest.approx(float(cells[1]), abs=5e-4)
    return rows


def test_table_matches_the_python_api(saved_model, capsys):
    args = ["explain", "--checkpoint", str(saved_model), "--prompt", PROMPT, "--a", A, "--b", B]
    assert cli.main([*args, "--all-groups"]) == 0
    rows = check_table(saved_model, capsys.readouterr().out)
    assert len({rows[label][1] for label in RewardModel.load(saved_model).group_labels}) > 1


@pytest.mark.slow
def test_table_on_a_trained_run(run_dir, capsys):
    args = ["explain", "--checkpoint", str(run_dir), "--prompt", PROMPT, "--a", A, "--b", B]
    assert cli.main([*args, "--all-groups", "--step", "latest"]) == 0
    rows = check_table(run_dir, capsys.readouterr().out)
    # the two groups of the tiny data have opposite tastes: the model learned them apart
    assert (rows["country=A"][1][0] == "+") != (rows["country=B"][1][0] == "+")


def test_json_and_group_selection(saved_model, capsys):
    args = ["explain", "--checkpoint", str(saved_model), "--prompt", PROMPT, "--a", A, "--b", B, "--json"]
    assert cli.main([*args, "--groups", "country=NG", "--groups", "country=US,language=en"]) == 0
    got = json.loads(capsys.readouterr().out)
    expected = explain(RewardModel.load(saved_model), PROMPT, A, B, groups="country=NG").to_dict()
    assert got["value_names"] == NAMES
    assert [g["group"] for g in got["groups"]] == ["country=NG", "country=US,language=en"]
    np.testing.assert_allclose(got["groups"][0]["gap"], expected["groups"][0]["gap"], rtol=1e-6)
    assert [c["value"] for c in got["groups"][0]["contributions"]] == [
        c["value"] for c in expected["groups"][0]["contributions"]]
    assert cli.main(args) == 0
    assert [g["group"] for g in json.loads(capsys.readouterr().out)["groups"]] == ["shared"]


def test_errors_are_one_line(saved_model, tmp_path, capsys):
    args = ["--prompt", PROMPT, "--a", A, "--b", B]
    assert cli.main(["explain", "--checkpoint", str(saved_model), *args, "--groups", "country=Z", "--fallback", "error"]) == 1
    assert "country" in capsys.readouterr().err
    pooled = random_model(kind="pooled").save(tmp_path / "pooled")
    assert cli.main(["explain", "--checkpoint", str(pooled), *args]) == 1
    err = capsys.readouterr().err
    assert "pluralrm explain: error:" in err and "'values' head" in err and "'pooled'" in err
    assert "values_hashing.yaml --out runs/v" in err  # how to get a values model


def test_warnings_are_cli_lines_and_unnamed_values_get_a_hint(saved_model, tmp_path, capsys):
    args = ["--prompt", PROMPT, "--a", A, "--b", B]
    assert cli.main(["explain", "--checkpoint", str(saved_model), *args, "--groups", "country=Z"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("pluralrm explain: warning: ") and "country" in err and "warnings.warn" not in err
    assert "unnamed" not in err
    unnamed = random_model(value_names=(), num_values=3).save(tmp_path / "unnamed")
    assert cli.main(["explain", "--checkpoint", str(unnamed), *args]) == 0
    captured = capsys.readouterr()
    assert "value_0" in captured.out and "model.head.value_names" in captured.err
