"""GroupSchema.from_dataset (Arrow path) equals from_columns (the per-row reference)."""
import datasets

from pluralrm.data.schema import GroupSchema


def test_from_dataset_matches_from_columns():
    rows = [dict(country=c, language=l) for c, l in
            [("NG", "yo"), ("NG", "en"), ("MX", "es"), ("", "es"), ("NG", "yo"), (" MX ", "es"), ("MX", "")]]
    data = datasets.Dataset.from_list(rows).select([6, 0, 1, 2, 3, 4, 5, 4])
    expected = GroupSchema.from_columns({a: list(data[a]) for a in ("country", "language")}, ("country", "language"))
    assert GroupSchema.from_dataset(data, ["country", "language"]) == expected
    assert GroupSchema.from_dataset(data, ["language"]) == GroupSchema.from_columns({"language": list(data["language"])})
