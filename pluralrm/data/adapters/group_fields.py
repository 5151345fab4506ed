"""Which released field holds each group attribute: the ``groups=`` argument of the adapters.

An adapter knows its dataset's demographic fields by our attribute names (e.g.
:data:`~pluralrm.data.adapters.prism.PRISM_GROUPS`); a user keeps all of them, a subset by name,
or maps names of their own to any released field.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from pluralrm.errors import ConfigError


def group_fields(groups: Sequence[str] | Mapping[str, str] | None, known: Mapping[str, str], dataset: str,
                 field_word: str = "field") -> dict[str, str]:
    """``{attribute: released field}`` for an adapter's ``groups=`` argument.

    Args:
      groups: None = every attribute of ``known``; names = those attributes of ``known``, in
        order; a mapping ``{attribute: field}`` = taken as it is (any released field).
      known: the dataset's attributes, ``{attribute: field}``.
      dataset: the dataset's name, for the error message.
      field_word: what a field is called in the error message (``survey_field``).

    Raises:
      ConfigError: a name that is not in ``known``, naming it and the known ones.
    """
    if groups is None:
        return dict(known)
    if isinstance(groups, Mapping):
        return dict(groups)
    unknown = [g for g in groups if g not in known]
    if unknown:
        raise ConfigError(f"unknown {dataset} group attribute {unknown[0]!r}: use one of {list(known)} "
                          f"or pass a mapping {{name: {field_word}}}")
    return {g: known[g] for g in groups}


__all__ = ["group_fields"]
