"""``pluralrm data summary|validate`` through pluralrm.cli.main."""
import json

import pytest

import pluralrm.cli as cli


@pytest.fixture(autouse=True)
def only_data_command(monkeypatch):
    """Builds the parser from the data subcommand alone (others may live on other branches)."""
    monkeypatch.setattr(cli, "COMMANDS", {"data": cli.COMMANDS["data"]})


@pytest.fixture
def prefs(tmp_path):
    rows = [{"prompt": "p1", "response_a": "x", "response_b": "y", "country": "NG", "annotator_id": "a"},
            {"prompt": "p1", "response_a": "y", "response_b": "x", "country": "US", "annotator_id": "b"}]
    path = tmp_path / "prefs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_summary_prints_the_table(prefs, capsys):
    assert cli.main(["data", "summary", str(prefs), "--columns", "chosen=response_a,rejected=response_b"]) == 0
    out = capsys.readouterr().out
    assert "comparisons  2" in out and "country" in out and "1.000 over 1 units" in out


def test_validate_ok_and_bad(prefs, tmp_path, capsys):
    args = ["--columns", "chosen=response_a,rejected=response_b", "--groups", "country"]
    assert cli.main(["data", "validate", str(prefs), *args]) == 0
    assert "OK, 2 comparisons" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(prefs.read_text() + json.dumps({"prompt": "p", "response_a": "", "response_b": "y"}) + "\n")
    assert cli.main(["data", "validate", str(bad), *args]) == 1
    err = capsys.readouterr().err
    assert f"{bad}, row 3, field 'response_a'" in err and "empty" in err


def test_validate_with_skip_lists_bad_rows(prefs, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(prefs.read_text() + "not json\n")
    code = cli.main(["data", "validate", str(bad), "--columns", "chosen=response_a,rejected=response_b",
                     "--on-bad-row", "skip"])
    out = capsys.readouterr().out
    assert code == 1 and "skipped 1" in out and "row 3" in out


def test_undeclared_and_ignored_columns(prefs, capsys):
    base = ["data", "validate", str(prefs), "--columns", "chosen=response_a,rejected=response_b", "--groups", ""]
    assert cli.main(base) == 1
    assert "undeclared group attribute 'country'" in capsys.readouterr().err
    assert cli.main(base + ["--extra", "ignore"]) == 0
    assert "dropped undeclared columns: country" in capsys.readouterr().out


def test_adapters(fixtures_dir, capsys):
    prism = fixtures_dir / "prism"
    assert cli.main(["data", "summary", str(prism / "utterances.jsonl"), "--adapter", "prism",
                     "--survey", str(prism / "survey.jsonl"), "--groups", "country"]) == 0
    assert "United Kingdom 7" in capsys.readouterr().out
    assert cli.main(["data", "validate", str(fixtures_dir / "hh-rlhf" / "harmless-base-sample.jsonl"),
                     "--adapter", "hh-rlhf"]) == 0
    assert "OK, 20 comparisons" in capsys.readouterr().out


def test_option_errors(prefs, capsys):
    assert cli.main(["data", "summary", str(prefs), "--columns", "chosen"]) == 1
    assert "our=their" in capsys.readouterr().err
    assert cli.main(["data", "summary", str(prefs), "--survey", "s.jsonl"]) == 1
    assert cli.main(["data", "summary", str(prefs) + ".missing"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_hints_use_cli_flags_and_warnings_are_one_line(prefs, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(prefs.read_text() + json.dumps({"prompt": "p", "response_a": "", "response_b": "y"}) + "\n")
    args = ["--columns", "chosen=response_a,rejected=response_b"]
    assert cli.main(["data", "summary", str(bad), *args]) == 1
    err = capsys.readouterr().err
    assert "--on-bad-row skip" in err and "on_bad_row=" not in err
    assert cli.main(["data", "summary", str(prefs), *args, "--groups", ""]) == 1
    err = capsys.readouterr().err
    assert "--extra ignore" in err and "add it to --groups" in err and "extra=" not in err
    assert cli.main(["data", "summary", str(bad), *args, "--on-bad-row", "skip"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("pluralrm data: warning: ") and "warnings.warn" not in err and "Warning:" not in err


@pytest.fixture
def society(tmp_path):
    """A tiny `pluralrm simulate` folder."""
    out = tmp_path / "society"
    from pluralrm.simulate import SocietyConfig, generate

    generate(SocietyConfig(comparisons=200, seed=3)).save(out)
    return out


def test_a_simulate_folder_reads_as_its_data_file(society, capsys):
    from pluralrm.data import load

    assert load(society).num_rows == 200
    assert cli.main(["data", "summary", str(society)]) == 0
    assert "comparisons  200" in capsys.readouterr().out


def test_split_and_candidates(society, tmp_path, capsys):
    import pyarrow.parquet as pq

    from pluralrm.data import load, split

    out = tmp_path / "splits"
    assert cli.main(["data", "split", str(society), "--by", "item", "--test-size", "0.2", "--out", str(out)]) == 0
    train, test = pq.read_table(out / "train.parquet"), pq.read_table(out / "test.parquet")
    want_train, want_test = split(load(society), by="item", test_size=0.2, seed=0)  # what `train` holds out
    assert train.column("chosen").to_pylist() == want_train["chosen"]
    assert test.column("chosen").to_pylist() == want_test["chosen"]
    assert cli.main(["data", "split", str(society), "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    candidates = tmp_path / "candidates.jsonl"
    assert cli.main(["data", "candidates", str(out / "test.parquet"), "--out", str(candidates)]) == 0
    rows = [json.loads(line) for line in candidates.read_text().splitlines()]
    pairs = {(r["prompt"], r["response"]) for r in rows}
    assert len(pairs) == len(rows)  # each distinct candidate once
    assert pairs == {(p, c) for p, c in zip(want_test["prompt"], want_test["chosen"])} | {
        (p, r) for p, r in zip(want_test["prompt"], want_test["rejected"])}
