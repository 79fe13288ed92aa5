"""What every file Gatewatch reads is validated with: a strict pydantic base model whose errors name the
field path, what was expected and what was given; durations ("30m", "24h") parsed once into timedelta.

`gatewatch.yaml`, canary configs, SLO files, gate policies and the Lambda's UserParameters are models
of this base, each beside the package that uses it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, model_validator

from .errors import ConfigError

__all__ = [
    "LIST",
    "Duration",
    "HttpUrl",
    "Model",
    "NonEmpty",
    "PositiveDuration",
    "describe",
    "duration_label",
    "parse_duration",
    "validate",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
MAX_DURATION = timedelta(days=36500)  # a hundred years
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
M = TypeVar("M", bound=BaseModel)


def parse_duration(text: str) -> timedelta:
    """'30d', '12h', '90m', '45s' or '2w' as a timedelta; ValueError says what is expected."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"invalid duration {_shown(text)}: use a number and a unit s, m, h, d or w, e.g. 30d")
    return _seconds(float(match.group(1)) * _SECONDS[match.group(2)], text)


def _seconds(seconds: float, shown: object) -> timedelta:
    # Bounded so that any time this far from now is a date every store and pandas can hold.
    if not seconds <= MAX_DURATION.total_seconds():
        raise ValueError(f"duration {_shown(shown)} is too long: at most {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def duration_label(span: timedelta) -> str:
    """A span in the largest whole unit, as PromQL writes durations: 28d, 6h, 5m, 90s (0.5s)."""
    total = span.total_seconds()
    if total != int(total):
        return f"{total:g}s"
    seconds = int(total)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return _seconds(value, value)
    if isinstance(value, str) and _DURATION.match(value):
        return parse_duration(value)
    raise ValueError(f"expected a duration such as 30s, 5m or 24h, got {_shown(value)}")


def _positive_duration(value: Any) -> timedelta:
    span = _duration(value)
    if span <= timedelta(0):
        raise ValueError(f"expected a positive duration such as 5s, got {_shown(value)}")
    return span


def _http_url(value: Any) -> str:
    text = _non_empty(value)
    if not re.match(r"https?://[^/\s]+", text):
        raise ValueError(f"expected an http:// or https:// URL, got {_shown(value)}")
    return text


def _non_empty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {_shown(value)}")
    return value


_LABEL = PlainSerializer(lambda span: duration_label(span), return_type=str, when_used="json")
Duration = Annotated[timedelta, BeforeValidator(_duration), _LABEL]
"""A duration written as a number and a unit (30s, 5m, 24h, 28d, 2w) or a number of seconds."""

PositiveDuration = Annotated[timedelta, BeforeValidator(_positive_duration), _LABEL]
"""A duration above zero."""

NonEmpty = Annotated[str, BeforeValidator(_non_empty)]
"""A string with something in it besides white space."""

HttpUrl = Annotated[str, BeforeValidator(_http_url)]
"""An http:// or https:// URL with a host."""

LIST = Field(strict=False)
"""For a `tuple[X, ...]` field: a YAML or JSON list is accepted (its items stay strict)."""


class Model(BaseModel):
    """A file's schema: unknown keys are refused by name, values are not coerced across types
    (a string is not a number, 1 is not true), and a parsed value is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = [f.alias or name for name, f in cls.model_fields.items()]
            unknown = [k for k in data if k not in known and k not in cls.model_fields]
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(map(str, unknown))}; expected {', '.join(known)}")
        elif not isinstance(data, BaseModel):
            raise ValueError(f"expected a mapping, got {_shown(data)}")
        return data


_TYPES = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "timedelta_type": "a duration such as 30s or 24h",
    "url_type": "a URL",
    "date_type": "a date such as 2024-12-23",
    "date_parsing": "a date such as 2024-12-23",
    "date_from_datetime_parsing": "a date such as 2024-12-23",
    "date_from_datetime_inexact": "a date such as 2024-12-23",
}
_SUBFIELD = re.compile(r"^[A-Za-z_][\w-]*(\[\d+\])?(\.[A-Za-z_][\w-]*(\[\d+\])?)*: ")
_BOUNDS = {
    "greater_than": "above",
    "greater_than_equal": "at least",
    "less_than": "below",
    "less_than_equal": "at most",
}


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue  # a validator's own name in the location, not a field
        else:
            out += ("." if out else "") + str(part)
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        return "required"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "literal_error":
        choices = re.sub(r"'([^']*)'", r"\1", str(ctx.get("expected", ""))).replace(" or ", ", ")
        return f"expected one of {choices}, got {_shown(given)}"
    if kind in _TYPES:
        return f"expected {_TYPES[kind]}, got {_shown(given)}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values())) if ctx else "?"
        return f"expected a value {_BOUNDS[kind]} {bound}, got {_shown(given)}"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return (
            "expected a non-empty string"
            if ctx.get("min_length") == 1
            else f"at least {ctx.get('min_length')} characters"
        )
    if kind in ("too_short", "too_long"):
        return f"{error['msg'][0].lower()}{error['msg'][1:]}"
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_shown(given)}"


def describe(exc: ValidationError, prefix: str = "", label: str = "") -> str:
    """The first error of a validation as `[label: ]path: what was expected, got what`, the field path
    as written in the file (`checks[0].on_fail`), under `prefix` (`UserParameters.max_wait`)."""
    error = exc.errors(include_url=False)[0]
    where = _path(tuple(error["loc"]))
    where = f"{prefix}.{where}" if prefix and where else (prefix or where)
    message = _message(error)
    if where and _SUBFIELD.match(message):  # a validator naming a key inside its field: window.rolling
        text = f"{where}.{message}"
    elif where:
        text = f"{where}: {message}"
    else:
        text = message
    return f"{label}: {text}" if label else text


def validate(
    model: type[M],
    raw: Any,
    *,
    error: type[ConfigError] = ConfigError,
    prefix: str = "",
    label: str = "",
    context: Mapping[str, Any] | None = None,
) -> M:
    """`raw` (parsed YAML or JSON) as a `model`; `error` naming the field and the fix when it does not fit."""
    try:
        return model.model_validate(raw, context=dict(context) if context else None)
    except ValidationError as exc:
        raise error(describe(exc, prefix, label)) from None
