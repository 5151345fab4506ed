"""The train/eval comparisons a TrainConfig names: loaded, validated and split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pluralrm.train.config import DataConfig

MEMORY_MAP_BYTES = 256 << 20


@dataclass(frozen=True)
class PreparedData:
    train: Any  # datasets.Dataset
    eval: Any | None
    source: str


def decoded_size(path: Path) -> int:
    """Bytes a file's rows take once decoded: Parquet's uncompressed size from its footer (a
    146 MB Parquet file of 10M comparisons holds ~7 GB of text), the file size otherwise."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path).metadata
            return max(path.stat().st_size, sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)))
        except Exception:  # noqa: BLE001 -- unreadable: the loader reports it properly
            pass
    return path.stat().st_size


def _load(path: str, config: DataConfig, cache_dir: Path | None, name: str):
    """One file, memory-mapped from ``cache_dir/<name>.arrow`` when ``config.memory_map`` says so."""
    from pluralrm.data import load

    columns = dict(config.columns) or None
    groups = list(config.groups) if config.groups is not None else None
    big = Path(path).is_file() and decoded_size(Path(path)) > MEMORY_MAP_BYTES
    if cache_dir is not None and (config.memory_map == "always" or (config.memory_map == "auto" and big)):
        from pluralrm.data.mapped import load_mapped

        return load_mapped(path, cache_dir / f"{name}.arrow", groups, columns, config.on_bad_row)[0]
    return load(path, groups=groups, columns=columns, on_bad_row=config.on_bad_row)


def prepare_data(config: DataConfig, cache_dir: str | Path | None = None) -> PreparedData:
    """Loads ``config.path`` (the bundled default society when empty), then either loads
    ``config.eval_path`` or holds out ``test_size`` split by ``split_by``. Large files are
    validated into ``cache_dir`` and memory-mapped (``config.memory_map``)."""
    from pluralrm.data import split

    cache_dir = Path(cache_dir) if cache_dir is not None else None
    groups = list(config.groups) if config.groups is not None else None
    if config.path:
        data = _load(config.path, config, cache_dir, "data")
        source = config.path
    else:
        from pluralrm.simulate import load_default

        data = load_default().data
        if groups is not None:
            from pluralrm.data.schema import group_attributes

            data = data.remove_columns([c for c in group_attributes(data) if c not in groups])
        source = "bundled default society"
    if config.eval_path:
        train = data
        evaluation = _load(config.eval_path, config, cache_dir, "eval")
    elif config.test_size > 0:
        train, evaluation = split(data, by=config.split_by, test_size=config.test_size, seed=config.seed)
    else:
        train, evaluation = data, None
    if config.max_train and len(train) > config.max_train:
        train = train.shuffle(seed=config.seed).select(range(config.max_train))
    return PreparedData(train, evaluation, source)
