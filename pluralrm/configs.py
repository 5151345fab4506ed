"""Frozen-dataclass configs to and from plain dicts (JSON/YAML), with errors users can act on.

``from_dict`` builds a (nested) config dataclass from a mapping: an unknown key is a
``ConfigError`` that names the full key (``optimizer.lrr``) and suggests the nearest valid one;
a value of the wrong type names the key and the expected type. ``apply_overrides`` applies
``--set a.b=value`` strings (values parsed as YAML scalars/lists). ``to_dict`` is the inverse.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import yaml

from pluralrm.errors import ConfigError

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON/YAML-ready dict (tuples become lists)."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        return value

    return convert(config)


def from_dict(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Builds ``cls`` from a mapping; see the module docstring for the errors raised."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(_unknown_key_message(full, key, fields, prefix))
        kwargs[key] = _coerce(hints[key], value, full)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"invalid {prefix.rstrip('.') or cls.__name__}: {e}") from None


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], cls: type | None = None) -> dict[str, Any]:
    """Applies ``key.sub=value`` overrides to a nested dict (a copy is returned).

    Values are parsed with ``yaml.safe_load`` (so ``3e-4``, ``true``, ``[1, 2]`` work). When
    ``cls`` is given, keys are checked against it so a typo fails here with a suggestion.
    """
    out = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. optimizer.lr=3e-4)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part.strip() for part in key.split(".")):
            raise ConfigError(f"override {item!r}: the key before '=' is empty or has an empty part (e.g. optimizer.lr=3e-4)")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {key}: cannot parse value {raw!r}: {e}") from None
        if cls is not None:
            _check_path(cls, key)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return out


def load_yaml(path: str) -> dict[str, Any]:
    """Reads a YAML mapping with ``yaml.safe_load`` (never executes tags)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- internals
def _unknown_key_message(full: str, key: str, fields: Mapping[str, Any], prefix: str) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.5)
    hint = f"; did you mean {prefix + close[0]!r}?" if close else ""
    valid = ", ".join(sorted(fields))
    return f"unknown config key {full!r}{hint} (valid keys here: {valid})"


def _check_path(cls: type, key: str) -> None:
    prefix = ""
    current: Any = cls
    for part in key.split("."):
        if not (isinstance(current, type) and dataclasses.is_dataclass(current)):
            raise ConfigError(f"unknown config key {key!r}: {prefix.rstrip('.')} has no sub-keys")
        fields = {f.name: f for f in dataclasses.fields(current)}
        if part not in fields:
            raise ConfigError(_unknown_key_message(prefix + part, part, fields, prefix))
        current = typing.get_type_hints(current)[part]
        prefix += part + "."


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return from_dict(hint, value, prefix=key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key {key!r}: {value!r} does not fit {hint}")
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            value = [value]
        items = list(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key) for v in items)
        return tuple(items)
    if origin in (dict, Mapping) or hint in (dict, typing.Any):
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return value
    return value


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data
