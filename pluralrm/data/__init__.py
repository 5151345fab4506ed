"""The comparison data layer: schema, loading and validation, conversions, splits, featurizers."""
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
