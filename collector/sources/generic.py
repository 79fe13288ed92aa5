"""The generic format for systems Gatewatch has no adapter for: deployment, change and incident
records as JSON objects (one per line, or a JSON list) or CSV rows with the same columns.

Ids are used as given (no prefix), so a record can refer to any deployment in the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, overload

from gatewatch.errors import PayloadError

from .base import Update, boolean, choice, field, timestamp
from .senders import identify

NAME = "generic"
TYPES = ("deployment", "change", "incident")
DEPLOYMENT_STATUS = {
    "success": "success",
    "failure": "failure",
    "rolled_back": "rolled_back",
    "in_progress": "in_progress",
}
COLUMNS = {
    "deployment": (
        "id",
        "service",
        "environment",
        "status",
        "started_at",
        "finished_at",
        "commits",
        "version",
        "rollback_of",
        "hotfix",
        "team",
    ),
    "change": ("id", "service", "committed_at", "merged_at", "pr", "author"),
    "incident": ("id", "service", "opened_at", "resolved_at", "severity", "deployment_id"),
}
_RECORD_FIELDS = frozenset(column for columns in COLUMNS.values() for column in columns) - {"id"}


def detect(payload: Any, hint: str | None = None) -> str | None:
    """A record whose `type` is deployment, change or incident; one with another type is claimed (and
    reported by its type) only when it has a generic field such as `service`, so another system's
    payload that happens to have a `type` is reported as unrecognised, not as a broken record."""
    if isinstance(payload, Mapping) and "type" in payload and "detail-type" not in payload:
        kind = payload.get("type")
        if kind in TYPES:
            return kind
        if not _RECORD_FIELDS.isdisjoint(payload) and identify(payload) is None:
            return "unknown"
    return None


def event_id(kind: str, payload: Any) -> str | None:
    """Generic records have no event id: the content hash is the dedupe key."""
    return None


@overload
def _text(payload: Mapping, name: str, required: Literal[True]) -> str: ...
@overload
def _text(payload: Mapping, name: str, required: bool = False) -> str | None: ...


def _text(payload: Mapping, name: str, required: bool = False) -> str | None:
    value = field(payload, name, str, required)
    if value is not None:
        value = value.strip()
        if not value:
            if required:
                raise PayloadError(name, "a non-empty string (required)", payload.get(name))
            return None
    return value


def _commits(payload: Mapping) -> list[str]:
    value = payload.get("commits")
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [c for c in re.split(r"[\s,;]+", value) if c]
    elif isinstance(value, list) and all(isinstance(c, str) for c in value):
        items = value
    else:
        raise PayloadError("commits", "a list of commit SHAs (in CSV: space-separated)", value)
    for sha in items:
        if not re.fullmatch(r"[0-9A-Za-z._/-]{1,255}", sha):
            raise PayloadError("commits", "commit SHAs (letters and digits)", sha)
    return items


def _deployment(payload: Mapping, config: Any) -> list[Update]:
    key = _text(payload, "id", True)
    service = _text(payload, "service", True)
    environment = _text(payload, "environment", True)
    status = choice(payload, "status", DEPLOYMENT_STATUS)
    started = timestamp(payload, "started_at", required=False)
    finished = timestamp(payload, "finished_at", required=status != "in_progress")
    if started and finished and finished < started:
        raise PayloadError("finished_at", "a time at or after started_at", payload.get("finished_at"))
    rollback_of = _text(payload, "rollback_of")
    team = _text(payload, "team") or config.team_for(service)
    updates = [
        Update(
            "deployments",
            key,
            {
                "source": NAME,
                "service": service,
                "team": team,
                "environment": environment,
                "production": config.is_production_environment(environment),
                "status": status,
                "status_at": finished or started,
                "started_at": started,
                "finished_at": finished,
                "version": _text(payload, "version"),
                "rollback_of": rollback_of,
                "is_rollback": rollback_of is not None,
                "hotfix": bool(boolean(payload, "hotfix")),
            },
        )
    ]
    for sha in _commits(payload):
        updates.append(Update("deployment_changes", f"{key}|{sha}", {"deployment_id": key, "change_id": sha}))
    return updates


def _change(payload: Mapping, config: Any) -> list[Update]:
    sha = _text(payload, "id", True)
    pr = payload.get("pr")
    if isinstance(pr, str):
        pr = pr.strip().lstrip("#") or None
    return [
        Update(
            "changes",
            sha,
            {
                "service": _text(payload, "service", True),
                "committed_at": timestamp(payload, "committed_at"),
                "merged_at": timestamp(payload, "merged_at", required=False),
                "pr": field({"pr": pr}, "pr", int, required=False),
                "author": _text(payload, "author"),
            },
        )
    ]


def _incident(payload: Mapping, config: Any) -> list[Update]:
    key = _text(payload, "id", True)
    opened = timestamp(payload, "opened_at")
    resolved = timestamp(payload, "resolved_at", required=False)
    if resolved and resolved < opened:
        raise PayloadError("resolved_at", "a time at or after opened_at", payload.get("resolved_at"))
    return [
        Update(
            "incidents",
            key,
            {
                "source": NAME,
                "service": _text(payload, "service", True),
                "status": "resolved" if resolved else "triggered",
                "status_at": resolved or opened,
                "opened_at": opened,
                "resolved_at": resolved,
                "severity": _text(payload, "severity"),
                "title": _text(payload, "title"),
                "deployment_id": _text(payload, "deployment_id"),
            },
        )
    ]


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """Turn one generic record into projection updates."""
    if kind not in TYPES:
        raise PayloadError("type", "one of " + ", ".join(TYPES), payload.get("type"))
    return {"deployment": _deployment, "change": _change, "incident": _incident}[kind](payload, config)
