"""Typed, validated configs: YAML presets, ``--set key=value`` overrides, hashes.

A config is a pydantic model deriving from :class:`ConfigModel` (unknown keys are errors).
Presets are YAML mappings; overrides use dotted keys (``train.steps=100``) and their values are
parsed with ``yaml.safe_load`` (so ``100`` is an int, ``[1, 2]`` a list, ``null`` None) before the
model validates them. Every error names the offending key, the expected type and the valid keys.

The helpers that turn a pydantic ``ValidationError`` into one readable line
(:func:`describe_validation_error`) are shared with :mod:`core.catalog`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import types
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """An invalid config file, key or value; the message names the key and the valid choices."""


class ConfigModel(BaseModel):
    """Base class for configs: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- model introspection


def _fields(cls: type[BaseModel]) -> dict[str, FieldInfo]:
    """Fields of ``cls`` keyed by the name used in input data (the alias when there is one)."""
    return {(f.alias or name): f for name, f in cls.model_fields.items()}


def valid_keys(cls: type[BaseModel]) -> list[str]:
    """The keys ``cls`` accepts in input data, in declaration order."""
    return list(_fields(cls))


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``annotation`` (``M``, ``M | None``, ``list[M]``, ``tuple[M, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _is_free_form(annotation: Any) -> bool:
    """True for ``Any``, ``dict`` and ``dict[...]`` fields, whose sub-keys are not checked."""
    if annotation is Any or annotation is dict:
        return True
    origin = get_origin(annotation)
    if origin in (dict, Mapping):
        return True
    if origin in (Union, types.UnionType, Annotated):
        return any(_is_free_form(a) for a in get_args(annotation) if a is not type(None))
    return False


def type_name(annotation: Any) -> str:
    """A short human name for a type annotation (``int``, ``one of 'a', 'b'``, ``float | None``)."""
    origin = get_origin(annotation)
    if annotation is type(None):
        return "None"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    if origin is Annotated:
        return type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(annotation))
    if isinstance(annotation, type) and origin is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _resolve(cls: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, FieldInfo | None, Any]:
    """Walk an error location through nested models.

    Returns the dotted key of the deepest known field, that field (or None) and the model class or
    annotation holding the location's last part (used to list valid keys).
    """
    key, field = "", None
    current: Any = cls
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            break
        fields = _fields(current)
        if part not in fields:
            break
        field = fields[part]
        key = f"{key}.{part}" if key else str(part)
        current = _nested_model(field.annotation) or field.annotation
    return key, field, current


def describe_validation_error(exc: ValidationError, cls: type[BaseModel]) -> str:
    """One line per distinct key: the key, what was expected and (for unknown keys) the valid keys."""
    lines: list[str] = []
    seen: set[str] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            parent_key, _, parent = _resolve(cls, loc[:-1])
            key = f"{parent_key}.{loc[-1]}" if parent_key else str(loc[-1])
            keys = valid_keys(parent) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
            where = f"under '{parent_key}'" if parent_key else "at the top level"
            line = f"unknown key '{key}'; valid keys {where}: {', '.join(keys)}"
        elif err["type"] == "missing":
            key, field, _ = _resolve(cls, loc)
            expected = type_name(field.annotation) if field is not None else "?"
            line = f"missing required key '{key}' (expected {expected})"
        else:
            key, field, _ = _resolve(cls, loc)
            expected = type_name(field.annotation) if field is not None else "?"
            line = f"invalid value for '{key or '<root>'}': expected {expected}, got {err['input']!r} ({err['msg']})"
        if key not in seen:
            seen.add(key)
            lines.append(line)
    return "; ".join(lines)


def validate_config(cls: type[M], data: Mapping[str, Any], source: str = "") -> M:
    """Validate ``data`` into ``cls``; raise :class:`ConfigError` with a readable message."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        prefix = f"{source}: " if source else ""
        raise ConfigError(f"{prefix}{describe_validation_error(exc, cls)}") from None


# --------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"train.steps=100"`` into ``("train.steps", 100)`` (value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. train.steps=100)")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {exc}") from None
    return key, value


def check_key(cls: type[BaseModel], key: str) -> None:
    """Raise :class:`ConfigError` unless the dotted ``key`` names a field of ``cls``."""
    parts = key.split(".")
    current: Any = cls
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i])
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            if _is_free_form(current):
                return
            raise ConfigError(f"config key '{parent}' has type {type_name(current)}; it has no sub-key '{part}'")
        fields = _fields(current)
        if part not in fields:
            where = f"under '{parent}'" if parent else "at the top level"
            raise ConfigError(
                f"unknown config key '{key}'; valid keys {where}: {', '.join(fields)}"
            )
        annotation = fields[part].annotation
        current = _nested_model(annotation) or annotation


def apply_overrides(
    data: Mapping[str, Any], overrides: Iterable[str], cls: type[BaseModel]
) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key=value`` override set (keys checked against ``cls``)."""
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for text in overrides:
        key, value = parse_override(text)
        check_key(cls, key)
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else _as_dict(child)
                node[part] = child
            node = child
        node[leaf] = value
    return out


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    if isinstance(value, Mapping):
        return dict(value)
    raise ConfigError(f"cannot override inside a non-mapping value {value!r}")


# --------------------------------------------------------------------------- files, YAML, hashes


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping (an empty file gives ``{}``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(
    cls: type[M],
    preset: str | Path | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
) -> M:
    """Load a preset (YAML path or mapping), apply ``key=value`` overrides and validate into ``cls``."""
    if preset is None:
        data, source = {}, ""
    elif isinstance(preset, Mapping):
        data, source = dict(preset), ""
    else:
        data, source = read_yaml_mapping(preset), str(preset)
    return validate_config(cls, apply_overrides(data, overrides, cls), source)


def to_plain(obj: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """JSON-compatible dict of a model (aliases, enums as values) or a mapping."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    return json.loads(json.dumps(dict(obj), default=str))


def canonical_json(obj: BaseModel | Mapping[str, Any]) -> str:
    """Canonical JSON (sorted keys, no spaces) used for hashing."""
    return json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_hash(obj: BaseModel | Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of a config; stable across key order and processes."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def to_yaml(obj: BaseModel | Mapping[str, Any]) -> str:
    """YAML text of a config (field order kept); :func:`from_yaml` reads it back."""
    return yaml.safe_dump(to_plain(obj), sort_keys=False, allow_unicode=True)


def from_yaml(cls: type[M], text: str) -> M:
    """Validate YAML text into ``cls`` (the inverse of :func:`to_yaml`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"the top level must be a mapping, got {type(data).__name__}")
    return validate_config(cls, data)
