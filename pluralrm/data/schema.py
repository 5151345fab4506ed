"""The canonical comparison table and the group vocabulary.

A *ComparisonDataset* is a plain ``datasets.Dataset`` with these columns:

==============  =======  ============================================================
column          type     meaning
==============  =======  ============================================================
prompt          string   the context both responses answer
chosen          string   the response the annotator preferred (or the first of a tie)
rejected        string   the other response
label           float64  P(chosen ≻ rejected): 1.0 = chosen preferred, 0.5 = tie,
                         or a soft probability (e.g. an empirical preference rate)
annotator_id    string   who judged ("" when unknown)
weight          float64  per-example loss weight (default 1.0)
item_id         string   optional: groups comparisons of the same prompt/pair
split           string   optional: a split name carried from the source
<attribute>     string   one column per group attribute (``country``, ``language``...)
==============  =======  ============================================================

Optional value-label columns ``chosen_values`` / ``rejected_values`` (lists of floats) carry
per-response value ratings where a dataset has them. Every other column is a group attribute.

A :class:`GroupSchema` fixes, for every group attribute, an ordered vocabulary. Id 0 of every
attribute is reserved for *unknown*: values never seen in training, missing values and the
empty string all map to 0, and every head falls back to its shared (population) reward for
id 0. The schema also records the *groups*: the attribute-value combinations seen in
training with their counts; ``Head.all_groups`` scores all of them in one pass.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pluralrm.errors import DataError

REQUIRED_COLUMNS: tuple[str, ...] = ("prompt", "chosen", "rejected")
CORE_COLUMNS: tuple[str, ...] = (
    "prompt",
    "chosen",
    "rejected",
    "label",
    "annotator_id",
    "weight",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("item_id", "split", "chosen_values", "rejected_values")
RESERVED_COLUMNS: frozenset[str] = frozenset(CORE_COLUMNS + OPTIONAL_COLUMNS)
TEXT_COLUMNS: tuple[str, ...] = ("prompt", "chosen", "rejected")
UNKNOWN: str = "<unk>"


def group_attributes(dataset: Any) -> list[str]:
    """The group-attribute columns of a ComparisonDataset, in column order."""
    return [c for c in dataset.column_names if c not in RESERVED_COLUMNS]


@dataclass(frozen=True)
class GroupSchema:
    """Ordered group attributes, their vocabularies, and the groups seen in training.

    Attributes:
      attributes: attribute names, e.g. ``("country", "language")``.
      vocabularies: per attribute, the known values; value ``vocabularies[a][i]`` has id
        ``i + 1`` (id 0 is unknown).
      groups: the attribute-value combinations ("groups") seen in training, as tuples of
        values, most frequent first. With one attribute these are simply its values.
      group_counts: number of training comparisons per group (population weights).
    """

    attributes: tuple[str, ...]
    vocabularies: tuple[tuple[str, ...], ...]
    groups: tuple[tuple[str, ...], ...] = ()
    group_counts: tuple[int, ...] = ()
    _index: tuple[dict[str, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.attributes) != len(self.vocabularies):
            raise DataError(
                f"GroupSchema has {len(self.attributes)} attributes but "
                f"{len(self.vocabularies)} vocabularies"
            )
        if len(set(self.attributes)) != len(self.attributes):
            raise DataError(f"GroupSchema attributes repeat: {list(self.attributes)}")
        for name in self.attributes:
            if name in RESERVED_COLUMNS:
                raise DataError(f"{name!r} is a reserved column and cannot be a group attribute")
        index = []
        for name, vocab in zip(self.attributes, self.vocabularies):
            if len(set(vocab)) != len(vocab):
                raise DataError(f"vocabulary of {name!r} repeats a value")
            if UNKNOWN in vocab or "" in vocab:
                raise DataError(f"vocabulary of {name!r} contains the reserved unknown value")
            index.append({v: i + 1 for i, v in enumerate(vocab)})
        object.__setattr__(self, "_index", tuple(index))
        if len(self.groups) != len(self.group_counts):
            raise DataError("GroupSchema.groups and group_counts differ in length")
        for g in self.groups:
            if len(g) != len(self.attributes):
                raise DataError(f"group {g} does not have one value per attribute")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_columns(
        cls, columns: Mapping[str, Sequence[str]], attributes: Sequence[str] | None = None
    ) -> "GroupSchema":
        """Builds the schema from training columns (vocabularies sorted by frequency, then name)."""
        attributes = tuple(columns) if attributes is None else tuple(attributes)
        for name in attributes:
            if name not in columns:
                raise DataError(f"group attribute {name!r} is not a column", field=name)
        n = len(next(iter(columns.values()))) if columns else 0
        rows = Counter(zip(*[columns[a] for a in attributes])) if attributes else Counter({(): n} if n else {})
        return cls._from_row_counts(attributes, rows)

    @classmethod
    def _from_row_counts(cls, attributes: tuple[str, ...], rows: Mapping[tuple, int]) -> "GroupSchema":
        """The schema of rows given as ``{raw value tuple: number of rows}``."""
        vocabs = []
        for a in range(len(attributes)):
            counts: Counter = Counter()
            for values, c in rows.items():
                if values[a] not in ("", None, UNKNOWN):
                    counts[values[a]] += c
            vocabs.append(tuple(sorted(counts, key=lambda v: (-counts[v], v))))
        combos: Counter = Counter()
        for values, c in rows.items():
            combos[tuple(clean_value(v) for v in values)] += c
        ordered = sorted(combos, key=lambda g: (-combos[g], g))
        return cls(
            attributes=attributes,
            vocabularies=tuple(vocabs),
            groups=tuple(ordered),
            group_counts=tuple(combos[g] for g in ordered),
        )

    @classmethod
    def from_dataset(cls, dataset: Any, attributes: Sequence[str] | None = None) -> "GroupSchema":
        """Builds the schema from a ComparisonDataset's group columns (default: all of them)."""
        attributes = group_attributes(dataset) if attributes is None else list(attributes)
        missing = [a for a in attributes if a not in dataset.column_names]
        if missing:
            raise DataError(
                f"group attribute(s) {missing} are not columns of the dataset "
                f"(columns: {dataset.column_names})",
                field=missing[0],
            )
        if not attributes or len(dataset) == 0:
            return cls.from_columns({a: dataset[a] for a in attributes}, attributes)
        # per distinct value combination, at Arrow speed: no Python object per row
        import numpy as np

        from pluralrm.data.columns import arrow_column, value_codes

        uniques, codes = zip(*(value_codes(arrow_column(dataset, a).fill_null("")) for a in attributes))
        combos, counts = np.unique(np.stack(codes, axis=1), axis=0, return_counts=True)
        rows = {tuple(uniques[a][k] for a, k in enumerate(combo)): int(c) for combo, c in zip(combos, counts)}
        return cls._from_row_counts(tuple(attributes), rows)

    # ----------------------------------------------------------------- sizes and ids
    @property
    def num_attributes(self) -> int:
        return len(self.attributes)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Embedding-table size per attribute: known values + 1 for unknown (id 0)."""
        return tuple(len(v) + 1 for v in self.vocabularies)

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    def value_id(self, attribute: str, value: str | None) -> int:
        """Id of one value (0 when unknown, missing or empty)."""
        a = self._attribute_index(attribute)
        return self._index[a].get(clean_value(value), 0)

    def encode(self, columns: Mapping[str, Sequence[Any]], n: int | None = None) -> np.ndarray:
        """Encodes group columns to ids. Returns ``group_ids: [N, A]`` int32.

        An attribute absent from ``columns`` is all-unknown (0); ``n`` gives N when no
        attribute column is present.
        """
        if n is None:
            present = [columns[a] for a in self.attributes if a in columns]
            if not present:
                raise DataError("encode() needs n when no group column is given")
            n = len(present[0])
        ids = np.zeros((n, self.num_attributes), dtype=np.int32)
        for a, name in enumerate(self.attributes):
            if name not in columns:
                continue
            values = columns[name]
            if len(values) != n:
                raise DataError(f"column {name!r} has {len(values)} rows, expected {n}", field=name)
            table = self._index[a]
            ids[:, a] = [table.get(clean_value(v), 0) for v in values]
        return ids

    def unknown_values(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
        """Values in ``columns`` that the schema does not know, per attribute (for warnings)."""
        out: dict[str, list[str]] = {}
        for a, name in enumerate(self.attributes):
            if name not in columns:
                continue
            unseen = sorted({clean_value(v) for v in columns[name]} - set(self._index[a]) - {""})
            if unseen:
                out[name] = unseen
        return out

    def group_ids(self) -> np.ndarray:
        """The training groups as ids. Returns ``[G, A]`` int32 (G >= 1)."""
        if not self.groups:
            return np.zeros((1, self.num_attributes), dtype=np.int32)
        return np.array(
            [[self._index[a].get(v, 0) for a, v in enumerate(g)] for g in self.groups],
            dtype=np.int32,
        ).reshape(len(self.groups), self.num_attributes)

    def group_labels(self) -> list[str]:
        """Readable labels of the groups, e.g. ``"country=NG,language=yo"``."""
        if not self.groups:
            return ["all"]
        return [
            ",".join(f"{a}={v}" for a, v in zip(self.attributes, g)) or "all"
            for g in self.groups
        ]

    def decode(self, ids: np.ndarray) -> list[tuple[str, ...]]:
        """Ids ``[N, A]`` back to value tuples (unknown as ``<unk>``)."""
        vocab = [(UNKNOWN,) + v for v in self.vocabularies]
        return [tuple(vocab[a][int(i)] for a, i in enumerate(row)) for row in np.asarray(ids)]

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "attributes": list(self.attributes),
            "vocabularies": [list(v) for v in self.vocabularies],
            "groups": [list(g) for g in self.groups],
            "group_counts": list(self.group_counts),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "group schema") -> "GroupSchema":
        try:
            return cls(
                attributes=tuple(str(a) for a in d["attributes"]),
                vocabularies=tuple(tuple(str(v) for v in vocab) for vocab in d["vocabularies"]),
                groups=tuple(tuple(str(v) for v in g) for g in d.get("groups", [])),
                group_counts=tuple(int(c) for c in d.get("group_counts", [])),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, DataError):
                raise DataError(f"invalid group schema: {e.reason}", file=source) from None
            raise DataError(f"invalid group schema: {e!r}", file=source) from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> "GroupSchema":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read group schema: {e}", file=str(path)) from None
        if not isinstance(d, dict):
            raise DataError("group schema must be a JSON object", file=str(path))
        return cls.from_dict(d, source=str(path))

    def _attribute_index(self, attribute: str) -> int:
        try:
            return self.attributes.index(attribute)
        except ValueError:
            raise DataError(
                f"unknown group attribute {attribute!r}; the schema has {list(self.attributes)}",
                field=attribute,
            ) from None


def clean_value(value: Any) -> str:
    """A group attribute value as the schema stores it: a stripped string, "" for unknown/None."""
    if value is None:
        return ""
    value = str(value).strip()
    return "" if value == UNKNOWN else value


def parse_group_spec(spec: str | Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """Parses ``"country=NG,language=yo"`` (or a mapping) into ``{attribute: value}``."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return {str(k): str(v) for k, v in spec.items()}
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    out: dict[str, str] = {}
    for part in parts:
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise DataError(f"group spec {part!r} is not attribute=value", field="groups")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out
