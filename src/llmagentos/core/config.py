"""Typed algorithm configs: dataclasses whose fields carry a one-line doc.

Every algorithm's config is a dataclass built with :func:`param`, so that the command line
(``--set key=value``), ``llmagentos algos`` and the YAML spec schema are all generated from
the one definition instead of being written twice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

from llmagentos.core.errors import UsageError
from llmagentos.core.limits import check_finite


def param(default: Any, doc: str, *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
          le: float | None = None, **kwargs: Any) -> Any:
    """A config field with a default, a one-line docstring and, for numbers, its bounds.

    ``gt``/``ge``/``lt``/``le`` (>, ≥, <, ≤) are declared once here; the ``--set`` and YAML checks
    (:func:`check_bounds`), the JSON Schema and ``llmagentos algos`` all read them from the field.
    """
    metadata = {"doc": doc, **{k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}}
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


BOUND_KEYS = ("gt", "ge", "lt", "le")


def bounds_of(field: dataclasses.Field) -> dict[str, float]:
    """The bounds a field declares (``{"gt": 0, "le": 1}``), empty when it has none."""
    return {k: field.metadata[k] for k in BOUND_KEYS if k in field.metadata}


def bounds_text(bounds: dict[str, float], positive: str = "> 0") -> str | None:
    """``in (0, 1]``, ``>= 0``, ``> 0`` (or the config's word for it, ``positive``) — what error sentences say."""
    low = ("(", bounds["gt"]) if "gt" in bounds else ("[", bounds["ge"]) if "ge" in bounds else None
    high = (")", bounds["lt"]) if "lt" in bounds else ("]", bounds["le"]) if "le" in bounds else None
    if low and high:
        return f"in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return positive if low == ("(", 0) else f"{'>' if low[0] == '(' else '>='} {low[1]:g}"
    if high:
        return f"{'<' if high[0] == ')' else '<='} {high[1]:g}"
    return None


def check_bounds(config: Any) -> None:
    """Refuse a field outside its declared bounds with one sentence: ``[PREFIX]name must be in (0, 1], got 3.0``.

    A config class may set ``BOUNDS_PREFIX`` (who speaks: ``"dqn "``) and ``BOUNDS_POSITIVE`` (its word for > 0).
    """
    prefix, positive = getattr(config, "BOUNDS_PREFIX", ""), getattr(config, "BOUNDS_POSITIVE", "> 0")
    for f in dataclasses.fields(config):
        bounds, value = bounds_of(f), getattr(config, f.name)
        if not bounds or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        inside = (("gt" not in bounds or value > bounds["gt"]) and ("ge" not in bounds or value >= bounds["ge"])
                  and ("lt" not in bounds or value < bounds["lt"]) and ("le" not in bounds or value <= bounds["le"]))
        if not inside:
            raise UsageError(f"{prefix}{f.name} must be {bounds_text(bounds, positive)}, got {value}")


def describe(config_cls: type) -> list[dict[str, Any]]:
    """One row per field: name, type, default, doc and bounds (what ``llmagentos algos`` prints)."""
    hints = typing.get_type_hints(config_cls)
    rows = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append({"name": f.name, "type": type_name(hints[f.name]), "default": default,
                     "doc": f.metadata.get("doc", ""),
                     "bounds": bounds_text(bounds_of(f), getattr(config_cls, "BOUNDS_POSITIVE", "> 0"))})
    return rows


def type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "{" + ",".join(str(a) for a in get_args(tp)) + "}"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (often a command-line string) to type ``tp`` or raise UsageError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except UsageError as err:
                errors.append(str(err))
        raise UsageError(f"{where}: {value!r} is not a valid {type_name(tp)}")
    if origin is Literal:
        allowed = get_args(tp)
        for a in allowed:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(map(str, allowed))}")
    if origin in (list, tuple):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{where}: {value!r} is not a list")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [coerce(v, item_tp, where) for v in value]
        return items if origin is list else tuple(items)
    if origin is dict or tp is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise UsageError(f"{where}: {value!r} is not a JSON object") from err
        if not isinstance(value, dict):
            raise UsageError(f"{where}: {value!r} is not a mapping")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise UsageError(f"{where}: {value!r} is not a boolean (true or false)")
    if tp is int:
        if isinstance(value, bool):
            raise UsageError(f"{where}: {value!r} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).replace("_", ""))
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                as_float = None
            if as_float is not None and as_float.is_integer():
                return int(as_float)
            raise UsageError(f"{where}: {value!r} is not an integer") from None
    if tp is float:
        if isinstance(value, bool):
            raise UsageError(f"{where}: {value!r} is not a number")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"{where}: {value!r} is not a number") from None
        if not math.isfinite(number):  # NaN never compares, so it would slip past every range check after this
            raise UsageError(f"{where}: {value!r} is not a finite number")
        return number
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise UsageError(f"{where}: {value!r} is not a string")
        return str(value)
    if isinstance(value, tp):
        return value
    raise UsageError(f"{where}: {value!r} is not a {type_name(tp)}")


def apply_overrides(config: Any, overrides: dict[str, Any], owner: str = "config") -> Any:
    """A copy of ``config`` with ``overrides`` applied; unknown keys and wrong types raise UsageError."""
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes = {}
    for key, value in overrides.items():
        if key not in hints or key not in names:
            raise UsageError(f"{owner} has no field {key!r}; its fields are: {', '.join(names)}")
        changes[key] = check_finite(coerce(value, hints[key], f"{owner}.{key}"), f"{owner}.{key}")
    new = dataclasses.replace(config, **changes)
    check_bounds(new)  # each field's declared bounds; validate() keeps the checks that span several fields
    validate = getattr(new, "validate", None)
    if callable(validate):
        validate()
    return new


def parse_key_values(pairs: list[str] | tuple[str, ...], flag: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without '=' raises UsageError."""
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"{flag} expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def literal_env_value(text: str) -> Any:
    """Interpret an ``--env-arg`` value: JSON when it parses (numbers, lists, true/null), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return text


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(config_cls: type, data: dict[str, Any], owner: str = "config") -> Any:
    return apply_overrides(config_cls(), data, owner)
