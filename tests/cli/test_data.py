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
