"""What every source normaliser shares: the projection update record and field readers that
name the field and what was expected when a payload does not fit."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, Protocol, overload

from gatewatch.errors import PayloadError

from ..timeutil import parse_timestamp

_MISSING = object()
TERMINAL = frozenset({"succeeded", "failed", "canceled", "superseded"})  # run statuses that end a run


@dataclass(frozen=True, slots=True)
class Update:
    """One event's contribution to one projection row (`table`, natural `key`): merged, never overwritten."""

    table: str
    key: str
    values: Mapping[str, Any]


class Source(Protocol):
    """A source module: `detect` recognises its payloads, `normalise` turns one into updates."""

    NAME: str

    def detect(self, payload: Any, hint: str | None) -> str | None: ...

    def event_id(self, kind: str, payload: Any) -> str | None: ...

    def normalise(self, kind: str, payload: Any, config: Any) -> list[Update]: ...


@lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def dispatch(handlers: Mapping[str, Any], kind: str, payload: Any, config: Any) -> list[Update]:
    """Call the handler for `kind`; a kind a source recognises but does not project gives no updates."""
    handler = handlers.get(kind)
    if handler is None:
        return []
    if not isinstance(payload, Mapping):
        raise PayloadError("body", "a JSON object", type(payload).__name__)
    return handler(payload, config)


def _walk(payload: Any, path: str) -> Any:
    if type(payload) is dict and "." not in path:  # the hot path: a top-level key
        return payload.get(path, _MISSING)
    node = payload
    for part in _parts(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object", list: "a list", bool: "a boolean"}


def field(payload: Any, path: str, kind: type = str, required: bool = True) -> Any:
    """Read a dotted `path`, check its type; None when optional and absent or null."""
    value = _walk(payload, path)
    if value is _MISSING or value is None:
        if required:
            raise PayloadError(
                path, _TYPE_NAMES.get(kind, kind.__name__) + " (required)", None if value is None else ...
            )
        return None
    if type(value) is kind and kind is not int:
        return value
    if kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if kind is int and type(value) is float and value.is_integer():  # JSON 1.0, as AWS writes counts
        return int(value)
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PayloadError(path, _TYPE_NAMES.get(kind, getattr(kind, "__name__", str(kind))), value)
    return value


@overload
def timestamp(payload: Any, path: str, required: Literal[True] = True) -> datetime: ...
@overload
def timestamp(payload: Any, path: str, required: bool) -> datetime | None: ...


def timestamp(payload: Any, path: str, required: bool = True) -> datetime | None:
    """Read a timestamp at `path` as an aware UTC datetime."""
    value = _walk(payload, path)
    if value is _MISSING or value is None or value == "":
        if required:
            raise PayloadError(path, "an ISO 8601 timestamp (required)")
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(path, "an ISO 8601 timestamp such as 2024-05-01T12:00:00Z", value) from None


@overload
def choice(payload: Any, path: str, mapping: Mapping[str, str], required: Literal[True] = True) -> str: ...
@overload
def choice(payload: Any, path: str, mapping: Mapping[str, str], required: bool) -> str | None: ...


def choice(payload: Any, path: str, mapping: Mapping[str, str], required: bool = True) -> str | None:
    """Read a string at `path` and map it through `mapping`; anything else names the allowed values."""
    value = field(payload, path, str, required)
    if value is None:
        return None
    if value not in mapping:
        raise PayloadError(path, "one of " + ", ".join(mapping), value)
    return mapping[value]


def boolean(payload: Any, path: str) -> bool | None:
    """Read a boolean that may also be written as true/false/yes/no/1/0 (CSV)."""
    value = _walk(payload, path)
    if value is _MISSING or value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "y", "t"):
        return True
    if text in ("false", "no", "0", "n", "f"):
        return False
    raise PayloadError(path, "a boolean (true or false)", value)


_CATEGORIES = (
    ("approval", re.compile(r"(?i)approv|\bgate\b|manual|sign.?off")),
    ("deploy", re.compile(r"(?i)deploy|release|publish|rollout|promot")),
    ("source", re.compile(r"(?i)checkout|\bclone\b")),
    (
        "test",
        re.compile(
            r"(?i)test|lint|check|spec\b|\be2e\b|\bqa\b|scan|analy[sz]|codeql|sonar|audit"
            r"|verif"
        ),
    ),
    ("build", re.compile(r"(?i)build|compil|package|bundle|docker|image|assembl")),
)


@lru_cache(maxsize=4096)
def category_for(name: str) -> str:
    """Guess a job's or step's category (build, test, deploy, approval, source, other) from its name."""
    for category, pattern in _CATEGORIES:
        if pattern.search(name):
            return category
    return "other"
