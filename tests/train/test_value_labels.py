"""Value labels for the values head: partly labelled data, K checks, and the auxiliary loss
training the value scores (pluralrm.train.batches / step)."""
import datasets
import numpy as np
import pytest
from tiny_run import make_dataset, tiny_config

from pluralrm.errors import DataError
from pluralrm.train.batches import value_label_arrays


def labelled(rows):
    return datasets.Dataset.from_list(
        [dict(prompt="p", chosen="a", rejected="b", label=1.0, chosen_values=c, rejected_values=r) for c, r in rows]
    )


def test_missing_labels_are_masked_not_zeros():
    data = labelled([([1.0, 2.0], [3.0, 4.0]), (None, [5.0, 6.0]), ([], None)])
    values, mask = value_label_arrays(data, 2)
    np.testing.assert_array_equal(mask, [[1, 1], [0, 1], [0, 0]])
    np.testing.assert_array_equal(values[0], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(values[1, 1], [5, 6])
    assert value_label_arrays(labelled([(None, None), ([], [])]), 2) is None
    # the row order of a selection is honoured
    values, mask = value_label_arrays(data.select([1, 0]), 2)
    np.testing.assert_array_equal(values[1, 0], [1, 2])
    np.testing.assert_array_equal(mask[0], [0, 1])


def test_wrong_length_or_non_finite_labels_name_the_row():
    data = labelled([([1.0, 2.0], [3.0, 4.0]), ([1.0, 2.0, 3.0], [5.0, 6.0])])
    with pytest.raises(DataError, match="row 2.*chosen_values.*3 value labels.*K=2"):
        value_label_arrays(data, 2)
    with pytest.raises(DataError, match="row 1.*rejected_values.*finite"):
        value_label_arrays(labelled([([1.0, 2.0], [float("nan"), 4.0])]), 2)


def response_values(text):
    return [1.0, -1.0] if text.startswith("good") else [-1.0, 1.0]


@pytest.mark.slow
def test_value_loss_trains_the_scores_on_labelled_responses(tmp_path):
    from pluralrm.train import fit

    train, test = make_dataset(n=600)
    rows = train.to_list()
    for i, row in enumerate(rows):  # every third comparison unlabelled
        row["chosen_values"] = None if i % 3 == 0 else response_values(row["chosen"])
        row["rejected_values"] = None if i % 3 == 0 else response_values(row["rejected"])
    train = datasets.Dataset.from_list(rows)
    extra = ["model.head.type=values", "model.head.num_values=2", "checkpoint.every=60",
             "schedule.warmup_steps=5", "optimizer.lr=0.01"]
    model, _ = fit(tiny_config(tmp_path / "run", 60, extra), train, test)
    texts = list(test["chosen"][:40]) + list(test["rejected"][:40])
    scores = model.value_scores(["p"] * len(texts), texts)
    target = np.array([response_values(t) for t in texts])
    mse = np.mean((scores - target) ** 2)
    assert mse < 0.1, mse  # the labels' variance is 1: the scores learned them
    with pytest.raises(DataError, match="K=3"):
        fit(tiny_config(tmp_path / "k3", 2, ["model.head.type=values", "model.head.num_values=3"]), train, test)
