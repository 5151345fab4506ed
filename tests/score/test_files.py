import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pluralrm.errors import ConfigError, DataError
from pluralrm.score import ScoreFileConfig, aggregate, score_file, select

sys.path.insert(0, str(Path(__file__).parent))
from score_helpers import SCHEMA, candidate_rows, read_rows, tiny_model, write_rows  # noqa: E402

LABELS = SCHEMA.group_labels()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_per_row_groups_equal_the_python_api(model, tmp_path):
    rows = candidate_rows(5, 3)  # countries NG, US, FR (unseen), "" (unknown)
    src = write_rows(tmp_path / "c.jsonl", rows)
    with pytest.warns(UserWarning, match="country='FR'"):
        report = score_file(model, src, tmp_path / "s.parquet", ScoreFileConfig(chunk_size=4))
    out = read_rows(tmp_path / "s.parquet")
    with pytest.warns(UserWarning, match="country='FR'"):
        expected = model.score([r["prompt"] for r in rows], [r["response"] for r in rows],
                               groups=[{"country": r["country"]} for r in rows])
    np.testing.assert_allclose([o["score"] for o in out], expected, rtol=1e-6, atol=1e-6)
    assert [o["row"] for o in out] == list(range(1, 16)) and [o["country"] for o in out] == [r["country"] for r in rows]
    assert report.rows == 15 and report.chunks == 4 and report.columns == ("score",)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_all_groups_with_a_rule_marks_the_best_candidate_per_prompt(model, tmp_path, suffix):
    rows = candidate_rows(6, 4)
    src = write_rows(tmp_path / "c.parquet", rows)
    config = ScoreFileConfig(all_groups=True, aggregate="worst", normalize="zscore", chunk_size=5, id_column="country")
    score_file(model, src, tmp_path / f"s{suffix}", config)
    out = read_rows(tmp_path / f"s{suffix}")
    assert list(out[0]) == ["row", "country", "prompt", "response", *[f"score[{g}]" for g in LABELS], "aggregate",
                            "best", "decisive"]
    table, _ = model.score_all_groups([r["prompt"] for r in rows], [r["response"] for r in rows])
    got = np.array([[float(o[f"score[{g}]"]) for g in LABELS] for o in out])
    np.testing.assert_allclose(got, table, rtol=1e-6, atol=1e-6)
    for i in range(6):
        s = select(table[4 * i: 4 * i + 4], "worst", group_labels=LABELS, normalize="zscore")
        block = out[4 * i: 4 * i + 4]
        np.testing.assert_allclose([float(o["aggregate"]) for o in block], s.scores, rtol=1e-5, atol=1e-6)
        assert [str(o["best"]) in ("True", "true") for o in block] == [k == s.index for k in range(4)]
        assert [o["decisive"] or "" for o in block] == [s.decisive_label if k == s.index else "" for k in range(4)]


def test_results_do_not_depend_on_the_chunk_size(model, tmp_path):
    """Candidate sets that straddle chunk boundaries are re-assembled before the rule runs."""
    src = write_rows(tmp_path / "c.jsonl", candidate_rows(9, 5))
    outs = []
    for chunk in (3, 7, 1000):
        config = ScoreFileConfig(all_groups=True, aggregate="borda", chunk_size=chunk)
        report = score_file(model, src, tmp_path / f"s{chunk}.jsonl", config)
        outs.append(read_rows(tmp_path / f"s{chunk}.jsonl"))
        assert report.rows == 45
    for other in outs[1:]:
        assert [o["aggregate"] for o in other] == [o["aggregate"] for o in outs[0]]
        assert [o["best"] for o in other] == [o["best"] for o in outs[0]]
        np.testing.assert_allclose([o[f"score[{LABELS[1]}]"] for o in other], [o[f"score[{LABELS[1]}]"] for o in outs[0]],
                                   rtol=1e-6, atol=1e-6)


def test_several_groups_population_weights_and_a_reference_set(model, tmp_path):
    rows = candidate_rows(4, 3)
    ref_rows = candidate_rows(3, 2, groups=("",))
    src, ref = write_rows(tmp_path / "c.csv", rows), write_rows(tmp_path / "ref.jsonl", ref_rows)
    groups = ("country=NG", "country=US,language=en")
    config = ScoreFileConfig(groups=groups, aggregate="weighted", weights="population", normalize="center")
    report = score_file(model, src, tmp_path / "s.jsonl", config, reference=ref)
    assert report.columns == ("score[country=NG]", "score[country=US,language=en]")
    out = read_rows(tmp_path / "s.jsonl")
    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    table = np.stack([model.score(prompts, responses, groups=g) for g in groups], axis=1)
    ref_table = np.stack([model.score([r["prompt"] for r in ref_rows], [r["response"] for r in ref_rows], groups=g)
                          for g in groups], axis=1)
    expected = aggregate(table, "weighted", [0.5, 0.5], normalize="center", reference=ref_table)
    np.testing.assert_allclose([o["aggregate"] for o in out], expected, rtol=1e-5, atol=1e-6)


def test_unseen_values_under_the_error_policy_are_bad_rows(model, tmp_path):
    src = write_rows(tmp_path / "c.jsonl", candidate_rows(2, 2))  # row 4 has country FR
    with pytest.raises(DataError, match=r"c.jsonl, row 4, field 'country': group value is not in the model's schema.*'FR'"):
        score_file(model, src, tmp_path / "s.jsonl", ScoreFileConfig(fallback="error"))
    report = score_file(model, src, tmp_path / "s.jsonl", ScoreFileConfig(fallback="error", on_bad_row="skip"))
    assert report.rows == 3 and report.skipped == 1 and "row 4" in report.bad_rows[0]
    with pytest.raises(DataError, match="'FR'"):
        score_file(model, src, tmp_path / "s.jsonl", ScoreFileConfig(groups=("country=FR",), fallback="error"))


def test_no_partial_output_when_a_run_fails(model, tmp_path):
    rows = candidate_rows(40, 3, groups=("NG", "US"))
    src = tmp_path / "c.jsonl"
    write_rows(src, rows)
    with open(src, "a") as f:
        f.write('{"prompt": "late", "response": 7}\n')  # row 121, after several chunks were written
    dst = tmp_path / "s.parquet"
    with pytest.raises(DataError, match="row 121, field 'response'"):
        score_file(model, src, dst, ScoreFileConfig(chunk_size=10))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]
    dst.write_text("an earlier complete output")
    with pytest.raises(DataError):
        score_file(model, src, dst, ScoreFileConfig(chunk_size=10))
    assert dst.read_text() == "an earlier complete output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "s.parquet"]


def _pooled_rows(n: int) -> list[dict]:
    """n rows drawn from a fixed pool of 40 x 4 long texts (the featurizer's cache then holds
    the same texts whatever n is, so only the pipeline's own memory can grow with n)."""
    pad = " lorem ipsum dolor sit amet" * 16
    return [{"prompt": f"prompt {i // 4 % 40}{pad}", "response": f"answer {i % 4}{pad}"} for i in range(n)]


def _peak_bytes(model, src, dst, config) -> int:
    tracemalloc.start()
    try:
        score_file(model, src, dst, config)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_input(model, tmp_path):
    config = ScoreFileConfig(all_groups=True, aggregate="mean", chunk_size=256)
    small = write_rows(tmp_path / "small.jsonl", _pooled_rows(4 * 256))
    large = write_rows(tmp_path / "large.jsonl", _pooled_rows(16 * 256))
    plain = score_file(model, large, tmp_path / "warm.parquet", ScoreFileConfig(all_groups=True, chunk_size=256))
    assert plain.chunks == 16 and plain.rows == 4096  # read and scored 256 rows at a time
    report = score_file(model, large, tmp_path / "warm.parquet", config)  # compile and fill caches first
    assert report.chunks == 17 and report.rows == 4096  # each chunk's last prompt is carried to the next
    peak_small = _peak_bytes(model, small, tmp_path / "s.parquet", config)
    peak_large = _peak_bytes(model, large, tmp_path / "l.parquet", config)
    # the large input is 4x the small one (~3 MB more text); the peak must not follow it
    assert large.stat().st_size - small.stat().st_size > 2_500_000
    assert peak_large < 1.2 * peak_small + 200_000, (peak_small, peak_large)


def test_configuration_errors(model, tmp_path):
    src = write_rows(tmp_path / "c.jsonl", candidate_rows(1, 2))
    with pytest.raises(ConfigError, match="needs the groups to aggregate over"):
        ScoreFileConfig(aggregate="worst")
    with pytest.raises(ConfigError, match="either groups or all_groups"):
        ScoreFileConfig(groups=("country=NG",), all_groups=True)
    with pytest.raises(ConfigError, match="apply to an aggregation rule"):
        ScoreFileConfig(all_groups=True, normalize="zscore")
    with pytest.raises(ConfigError, match="'worst' takes no parameters"):
        ScoreFileConfig(all_groups=True, aggregate="worst", params=(("q", 0.2),))
    with pytest.raises(ConfigError, match="is the input file"):
        score_file(model, src, src)
    with pytest.raises(DataError, match="exceeds 3 rows"):
        score_file(model, write_rows(tmp_path / "big.jsonl", candidate_rows(1, 5)), tmp_path / "s.jsonl",
                   ScoreFileConfig(all_groups=True, aggregate="mean", max_set_size=3, chunk_size=2))
