"""pluralrm.data.columns: Arrow column access and sorted value codes."""
import numpy as np
import pyarrow as pa

from pluralrm.data.columns import arrow_column, value_codes
from pluralrm.data.io import load


def test_value_codes_are_sorted_and_invert():
    values = pa.chunked_array([pa.array(["yo", "en"]), pa.array(["ha", "en", "yo"])])
    uniques, codes = value_codes(values)
    assert uniques.tolist() == ["en", "ha", "yo"] and codes.tolist() == [2, 0, 1, 0, 2]
    assert uniques[codes].tolist() == values.to_pylist()
    numbers, codes = value_codes(pa.array([3, 1, 3]))
    assert numbers.tolist() == [1, 3] and codes.dtype == np.int64


def test_arrow_column_follows_select(rows):
    ds = load(rows).select([4, 0, 2])
    assert arrow_column(ds, "country").to_pylist() == [rows[4]["country"], rows[0]["country"], rows[2]["country"]]
