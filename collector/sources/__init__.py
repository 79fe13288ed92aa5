"""Source normalisers: each recognises its own payloads and turns them into projection updates.

A source module has `NAME`, `detect(payload, hint) -> kind | None`, `event_id(kind, payload) ->
str | None` (the source's own delivery id, used for dedupe when present) and
`normalise(kind, payload, config) -> list[Update]` (raises PayloadError naming the field).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import cloudwatch, codebuild, codecommit, codedeploy, codepipeline, generic, github, gitlab, pagerduty
from .base import Update

# Auto-detection asks each in this order, most specific first; `generic` last (records with a `type`).
SOURCES: dict[str, ModuleType] = {
    m.NAME: m for m in (codepipeline, codedeploy, codebuild, cloudwatch, codecommit, pagerduty, gitlab, github, generic)
}


def detect(payload: Any, hint: str | None = None) -> tuple[str, str] | None:
    """(source, kind) of a payload, or None when no source recognises it."""
    for name, module in SOURCES.items():
        kind = module.detect(payload, hint)
        if kind is not None:
            return name, kind
    return None


__all__ = ["SOURCES", "Update", "detect"]
