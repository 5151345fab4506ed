import numpy as np
import pytest

from pluralrm.data import DataError, load, save
from pluralrm.data.mapped import load_mapped


def rows(n, bad_at=()):
    out = []
    for i in range(n):
        out.append({"prompt": f"p{i % 7}", "chosen": f"good {i}", "rejected": f"bad {i}",
                    "label": 2.0 if i in bad_at else 1.0, "annotator_id": f"a{i % 5}", "weight": 1.0,
                    "country": ["NG", "US"][i % 2]})
    return out


def test_chunked_parquet_equals_plain_load_and_is_memory_mapped(tmp_path):
    import datasets

    path = save(load(rows(1000)), tmp_path / "d.parquet")
    mapped, report = load_mapped(path, tmp_path / "cache" / "d.arrow", chunk_rows=128)
    plain = load(path)
    assert isinstance(mapped.data, datasets.table.MemoryMappedTable)
    assert report.rows_read == report.rows_kept == 1000
    assert mapped.column_names == plain.column_names
    for column in plain.column_names:
        assert list(mapped[column]) == list(plain[column])


def test_row_numbers_in_later_chunks_are_the_files(tmp_path):
    path = save(load(rows(500)), tmp_path / "d.parquet")
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    labels = table.column("label").to_numpy().copy()
    labels[300] = 1.5
    import pyarrow as pa

    pq.write_table(table.set_column(table.column_names.index("label"), "label", pa.array(labels)), path)
    with pytest.raises(DataError, match=r"d\.parquet, row 301, field 'label'"):
        load_mapped(path, tmp_path / "c.arrow", chunk_rows=128)
    with pytest.warns(Warning, match="kept 499 of 500"):
        data, report = load_mapped(path, tmp_path / "c.arrow", on_bad_row="skip", chunk_rows=128)
    assert len(data) == 499 and report.problems[0].row == 301


def test_other_formats_are_spilled(tmp_path):
    import datasets

    path = save(load(rows(50)), tmp_path / "d.jsonl")
    data, _ = load_mapped(path, tmp_path / "c.arrow")
    assert isinstance(data.data, datasets.table.MemoryMappedTable)
    assert np.array_equal(np.asarray(data["label"]), np.ones(50))


def test_training_on_a_memory_mapped_file(tmp_path):
    from pluralrm.train import fit, load_config
    from pluralrm.train.data import prepare_data

    path = save(load(rows(400)), tmp_path / "d.parquet")
    config = load_config(None, [f"data.path={path}", "data.memory_map=always", "train.steps=4", "train.batch_size=16",
                                "model.backbone.num_buckets=1024", "model.backbone.embed_dim=8", "model.backbone.hidden_dims=[8]",
                                "model.head.hidden_dim=8", "train.progress=false", f"run_dir={tmp_path / 'run'}",
                                "checkpoint.async_save=false"])
    data = prepare_data(config.data, cache_dir=tmp_path / "run" / "data")
    assert (tmp_path / "run" / "data" / "data.arrow").is_file()
    _, result = fit(config, data.train, data.eval)
    assert result.steps == 4
