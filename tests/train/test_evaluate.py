import math

import numpy as np
import pytest

from pluralrm.data.schema import GroupSchema
from pluralrm.train.evaluate import group_metrics, pair_metrics


def test_pair_metrics_by_hand():
    prob = np.array([0.9, 0.4, 0.7, 0.5])
    label = np.array([1.0, 1.0, 0.5, 0.0])
    acc, nll = pair_metrics(prob, label)
    # hard rows: 0 (right), 1 (wrong), 3 (0.5 > 0.5 is False == label>0.5 False: right)
    assert acc == pytest.approx(2 / 3)
    expected = -(math.log(0.9) + math.log(0.4) + 0.5 * math.log(0.7) + 0.5 * math.log(0.3) + math.log(0.5)) / 4
    assert nll == pytest.approx(expected)


def test_group_metrics_on_a_hand_checked_batch():
    schema = GroupSchema.from_columns({"country": ["NG", "NG", "US"]})
    ids = schema.encode({"country": ["NG", "US", "NG", "FR"]})
    prob = np.array([0.8, 0.3, 0.2, 0.6])
    label = np.ones(4)
    rows = {g.group: g for g in group_metrics(prob, label, np.ones(4), ids, schema)}
    assert rows["all"].count == 4 and rows["all"].accuracy == pytest.approx(0.5)
    assert rows["country=NG"].count == 2 and rows["country=NG"].accuracy == pytest.approx(0.5)
    assert rows["country=NG"].nll == pytest.approx(-(math.log(0.8) + math.log(0.2)) / 2)
    assert rows["country=US"].accuracy == 0.0
    assert rows["country=<unk>"].count == 1 and rows["country=<unk>"].accuracy == 1.0


def test_weights_count():
    acc, _ = pair_metrics(np.array([0.9, 0.1]), np.ones(2), np.array([3.0, 1.0]))
    assert acc == pytest.approx(0.75)
