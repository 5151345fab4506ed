"""encode_comparisons / make_batch: ids match a per-row reference, texts stay Arrow."""
import datasets
import numpy as np
import pyarrow as pa

from pluralrm.data.featurize import HashingFeaturizer
from pluralrm.data.schema import GroupSchema
from pluralrm.train.batches import encode_comparisons, make_batch


def _data():
    rows = [
        dict(prompt=f"p{i}", chosen=f"good {i}", rejected=f"bad {i}", label=1.0, weight=1.0,
             annotator_id=["u1", "u2", "", "u9"][i % 4], country=["NG", "MX", "", "ZZ"][i % 4],
             language=["yo", "es", "en"][i % 3])
        for i in range(12)
    ]
    return datasets.Dataset.from_list(rows)


def test_ids_match_the_per_row_encoding_and_texts_stay_arrow():
    data = _data().select([5, 1, 7, 0, 11, 3])  # an indices mapping, rows out of order
    schema = GroupSchema(("country", "language"), (("MX", "NG"), ("es", "yo")))
    encoded = encode_comparisons(data, schema, annotators=("u1", "u2"))
    reference = schema.encode({a: list(data[a]) for a in schema.attributes})
    np.testing.assert_array_equal(encoded.group_ids, reference)
    vocab = {"u1": 1, "u2": 2}
    np.testing.assert_array_equal(encoded.annotator_ids, [vocab.get(a, 0) for a in data["annotator_id"]])
    assert isinstance(encoded.prompts.column, pa.ChunkedArray)  # the table's own column
    assert list(encoded.prompts.to_pylist()) == list(data["prompt"])
    featurizer = HashingFeaturizer(num_buckets=512, max_length=64, buckets=(64,))
    rows = np.array([4, 0, 2])
    batch = make_batch(encoded, rows, featurizer)
    prompts = [data["prompt"][i] for i in rows]
    expected = featurizer(prompts * 2, [data["chosen"][i] for i in rows] + [data["rejected"][i] for i in rows])["ids"]
    np.testing.assert_array_equal(batch["inputs"]["ids"][:, 0], expected[:3])
    np.testing.assert_array_equal(batch["inputs"]["ids"][:, 1], expected[3:])


def test_no_annotator_vocabulary_gives_unknown_ids():
    encoded = encode_comparisons(_data(), GroupSchema(("country",), (("NG",),)), annotators=())
    assert encoded.annotator_ids.dtype == np.int32 and not encoded.annotator_ids.any()
    np.testing.assert_array_equal(encoded.group_ids[:, 0], [1 if i % 4 == 0 else 0 for i in range(12)])


def test_batch_rows_walk_each_epochs_permutation_computed_once():
    from pluralrm.train.batches import BatchStream

    schema = GroupSchema(("country",), (("MX", "NG"),))
    encoded = encode_comparisons(_data(), schema, annotators=())
    stream = BatchStream(encoded, HashingFeaturizer(num_buckets=64, max_length=16, buckets=(16,)), 5, seed=3)
    for epoch in (0, 1, 0):
        expected = np.random.default_rng([3, epoch]).permutation(12)
        first = stream.order(epoch)
        got = np.concatenate([stream.rows((epoch, i)) for i in range(stream.batches_per_epoch)])
        np.testing.assert_array_equal(got, expected[:10])  # 2 full batches; the last 2 rows wait
        assert stream.order(epoch) is first  # not recomputed per batch
    assert stream.next_position((0, 1)) == (1, 0)


def test_texts_are_gathered_chunk_by_chunk_in_row_order():
    from pluralrm.train.batches import take_texts

    texts = [f"t{i}" for i in range(50)]
    chunked = pa.chunked_array([texts[:7], texts[7:8], texts[8:30], texts[30:]])
    rows = np.array([49, 0, 7, 8, 29, 30, 3, 3, 48])
    assert take_texts(chunked, rows) == [texts[i] for i in rows]
    assert take_texts(pa.chunked_array([texts]), rows) == [texts[i] for i in rows]
    assert take_texts(texts, rows) == [texts[i] for i in rows]
