"""``predict_preference(..., groups="all")`` returns labelled probabilities (GroupPreferences)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_reward_model import PROMPTS, RESPONSES, SCHEMA, tiny_model  # noqa: E402

from pluralrm.models.preferences import GroupPreferences  # noqa: E402


def test_all_groups_come_labelled_and_equal_each_group_asked_alone():
    model = tiny_model()
    every = model.predict_preference(PROMPTS, RESPONSES, RESPONSES[::-1], groups="all")
    assert isinstance(every, GroupPreferences)
    assert every.labels == tuple(SCHEMA.group_labels()) and every.shape == (3, SCHEMA.num_groups)
    for g, label in enumerate(every.labels):
        alone = model.predict_preference(PROMPTS, RESPONSES, RESPONSES[::-1], groups=label)
        np.testing.assert_allclose(every.for_group(label), alone, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(every)[:, g], every.for_group(label))
    first = every.to_dicts()[0]
    assert list(first) == list(every.labels) and first[every.labels[1]] == pytest.approx(float(every[0, 1]))
    assert every.labels[0] in repr(every)
    with pytest.raises(KeyError, match="the groups are"):
        every.for_group("country=XX")


def test_array_code_keeps_working():
    model = tiny_model()
    every = model.predict_preference(PROMPTS[0], RESPONSES[0], RESPONSES[1], groups="all")
    row = every[0]  # what the server and explain() index
    assert isinstance(row, np.ndarray) and row.shape == (SCHEMA.num_groups,)
    assert np.asarray(every, dtype=np.float64).dtype == np.float64 and len(every) == 1
