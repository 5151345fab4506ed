"""The comparison data layer: schema, loading and validation, conversions, splits, summaries,
adapters for public datasets, and featurizers."""
from pluralrm.data.schema import (
    CORE_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    UNKNOWN,
    GroupSchema,
    group_attributes,
    parse_group_spec,
)
from pluralrm.errors import DataError

__all__ = [
    "CORE_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "UNKNOWN",
    "DataError",
    "GroupSchema",
    "group_attributes",
    "parse_group_spec",
]

from pluralrm.data.pairs import CanonicalPairs, canonicalize, canonicalize_dataset  # noqa: E402

__all__ += ["CanonicalPairs", "canonicalize", "canonicalize_dataset"]

from pluralrm.data import adapters  # noqa: E402
from pluralrm.data.adapters import dices, hh_rlhf, popquorn, prism  # noqa: E402
from pluralrm.data.convert import preference_rates, ratings_to_pairs  # noqa: E402
from pluralrm.data.io import DataWarning, LoadReport, load, load_with_report, save  # noqa: E402
from pluralrm.data.split import split, train_val_test  # noqa: E402
from pluralrm.data.summary import DatasetSummary, summarize  # noqa: E402

__all__ += [
    "DataWarning",
    "DatasetSummary",
    "LoadReport",
    "adapters",
    "dices",
    "hh_rlhf",
    "load",
    "load_with_report",
    "popquorn",
    "preference_rates",
    "prism",
    "ratings_to_pairs",
    "save",
    "split",
    "summarize",
    "train_val_test",
]
