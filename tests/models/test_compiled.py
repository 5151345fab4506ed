"""Padded batch sizes (``pluralrm.models.compiled``)."""
import numpy as np

from pluralrm.models.compiled import pad_batch, padded_size


def test_pad_batch_appends_zero_rows_to_every_array_and_keeps_dtypes():
    batch = {"ids": np.array([[3, 4], [5, 6], [7, 0]], np.int32), "mask": np.ones((3,), np.float32)}
    size = padded_size(3)
    out = pad_batch(batch, size)
    assert size == 4 and set(out) == {"ids", "mask"}
    np.testing.assert_array_equal(out["ids"], [[3, 4], [5, 6], [7, 0], [0, 0]])
    np.testing.assert_array_equal(out["mask"], [1, 1, 1, 0])
    assert out["ids"].dtype == np.int32 and out["mask"].dtype == np.float32
    assert pad_batch(batch, 2)["ids"] is batch["ids"]  # already large enough: untouched
