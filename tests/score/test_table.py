"""Scoring options and rule weights (``pluralrm.score.table``)."""
import numpy as np
import pytest

from pluralrm.data.schema import GroupSchema
from pluralrm.errors import ConfigError
from pluralrm.score.table import check_score_options, population_weights, rule_weights


@pytest.fixture
def schema():
    return GroupSchema.from_columns({"country": ["US"] * 3 + ["NG"]})  # 3 US comparisons, 1 NG


def test_weighted_without_weights_and_population_give_the_training_shares(schema):
    shares = dict(zip(schema.group_labels(), population_weights(schema)))
    assert shares == pytest.approx({"country=US": 0.75, "country=NG": 0.25})
    np.testing.assert_array_equal(rule_weights(schema, "weighted", None), population_weights(schema))
    np.testing.assert_array_equal(rule_weights(schema, "mean", "population"), population_weights(schema))
    np.testing.assert_allclose(rule_weights(schema, "softmin", "population", ["country=NG"]), [1.0])


def test_numbers_pass_as_float64_and_no_weights_stay_none(schema):
    w = rule_weights(schema, "weighted", (1, 3))
    assert w.dtype == np.float64 and w.tolist() == [1.0, 3.0]
    assert rule_weights(schema, "mean", None) is None
    assert rule_weights(schema, "worst", None) is None


@pytest.mark.parametrize("options, field", [
    (dict(fallback="closest"), "fallback"),
    (dict(fallback="pooled", normalize="minmax"), "normalize"),
    (dict(fallback="pooled", weights="equal"), "weights"),
])
def test_a_wrong_option_is_named_with_its_value(options, field):
    with pytest.raises(ConfigError, match=f"^{field} must be .*got '{list(options.values())[-1]}'$"):
        check_score_options(**options)
    check_score_options("nearest", "zscore", "population")
    check_score_options("error", "center", (0.5, 0.5))
