"""encode_comparisons reads whole Arrow columns: bitwise equal to the original per-row encoder on
the bundled society, in memory and memory-mapped, with and without an indices mapping."""
import datasets
import numpy as np
import pyarrow as pa
import pytest

from pluralrm.data import split
from pluralrm.data.schema import GroupSchema
from pluralrm.simulate import load_default
from pluralrm.train.batches import RowTexts, encode_comparisons, take_texts


def per_row_encoding(dataset, schema, annotators):
    """The encoder as first written (oracle): labels, weights, groups, annotators and value labels
    read row by row through the ``datasets`` API."""
    groups = schema.encode({a: [v or "" for v in dataset[a]] for a in schema.attributes})
    vocab = {a: i + 1 for i, a in enumerate(annotators)}
    annotator_ids = np.array([vocab.get(a, 0) for a in dataset["annotator_id"]], np.int32)
    k = len(next(v for v in dataset["chosen_values"] if v))
    values = np.zeros((len(dataset), 2, k), np.float32)
    mask = np.zeros((len(dataset), 2), np.float32)
    for i, row in enumerate(dataset):
        for side, name in enumerate(("chosen_values", "rejected_values")):
            if row[name]:
                values[i, side] = row[name]
                mask[i, side] = 1.0
    return {
        "texts": {c: list(dataset[c]) for c in ("prompt", "chosen", "rejected")},
        "group_ids": groups.astype(np.int32),
        "annotator_ids": annotator_ids,
        "label": np.asarray(list(dataset["label"]), np.float32),
        "weight": np.asarray(list(dataset["weight"]), np.float32),
        "values": values,
        "values_mask": mask,
    }


@pytest.fixture(scope="module")
def society_data(tmp_path_factory):
    data = load_default().data
    directory = tmp_path_factory.mktemp("mapped")
    data.save_to_disk(str(directory))
    mapped = datasets.load_from_disk(str(directory))
    assert mapped.cache_files  # memory-mapped from the Arrow files
    return {"memory": data, "mapped": mapped}


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["memory", "mapped"])
@pytest.mark.parametrize("view", ["whole", "split", "shard"])
def test_bitwise_equal_to_the_per_row_encoder_on_the_bundled_society(society_data, storage, view):
    data = society_data[storage]
    if view == "split":
        data = split(data, by="item", test_size=0.2, seed=0)[0]
    elif view == "shard":
        data = data.shuffle(seed=1).shard(3, 1, contiguous=True).select(range(0, 5000, 2))
    schema = GroupSchema(("country", "language"), (("EG", "NG", "US"), ("ar", "en", "yo")))
    annotators = tuple(sorted(set(data["annotator_id"])))[::3]
    got = encode_comparisons(data, schema, annotators, value_labels=True)
    want = per_row_encoding(data, schema, annotators)
    for name in ("group_ids", "annotator_ids", "label", "weight", "values", "values_mask"):
        a, b = getattr(got, name), want[name]
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), name
    for column, attribute in (("prompt", "prompts"), ("chosen", "chosen"), ("rejected", "rejected")):
        texts = getattr(got, attribute)
        assert len(texts) == len(data)
        assert texts.to_pylist() == want["texts"][column]
        rows = np.random.default_rng(0).integers(0, len(data), 64)
        assert take_texts(texts, rows) == [want["texts"][column][i] for i in rows]


def test_row_texts_gather_across_chunks_in_row_order():
    texts = [f"t{i}" for i in range(40)]
    column = pa.chunked_array([texts[:7], texts[7:8], texts[8:30], texts[30:]])
    mapping = np.array([39, 0, 7, 8, 8, 29, 30, 3], np.int64)  # dataset row -> table row
    row_texts = RowTexts(column, mapping)
    assert len(row_texts) == 8 and row_texts.to_pylist() == [texts[i] for i in mapping]
    rows = np.array([7, 0, 3, 3, 1, 6])
    assert take_texts(row_texts, rows) == [texts[mapping[i]] for i in rows]
    assert take_texts(RowTexts(column), np.array([31, 2])) == ["t31", "t2"]
    assert take_texts(row_texts, np.array([], np.int64)) == []
