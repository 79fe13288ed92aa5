"""AWS CodeBuild: EventBridge "CodeBuild Build State Change" and "CodeBuild Build Phase Change"
events, as pipeline runs `codebuild:{build id}` (the build id is `project:uuid`, the end of the
event's build ARN, which is what a CodePipeline CodeBuild action reports as its external id).

- pipeline: the project; service: `services.codebuild` of the project, else the project's name.
- queued_at: `build-start-time` (submission); started_at: the start of the first phase after
  SUBMITTED and QUEUED (known once that phase appears, the same in every later event); finished_at:
  the start of the COMPLETED phase, else the time of the event that ended the build.
- Statuses: IN_PROGRESS in_progress, SUCCEEDED succeeded, FAILED, FAULT and TIMED_OUT failed,
  STOPPED canceled. Phase-change events carry the same phases but no build status: they add times only.
- trigger: the `initiator` (`codepipeline/<pipeline>` when CodePipeline started the build: such
  runs are part of that execution, see collector.loaders).
- The payload's times other than `time` are written like "Sep 1, 2017 4:12:29 PM" (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from gatewatch.errors import PayloadError

from ..timeutil import UTC, parse_timestamp
from .base import TERMINAL, Update, choice, dispatch, field, timestamp

NAME = "codebuild"
PREFIX = "codebuild:"
DETAIL_TYPES = {"CodeBuild Build State Change": "build", "CodeBuild Build Phase Change": "phase"}
OTHER = "other"  # e.g. fleet state changes, CloudTrail API calls: archived, nothing to project
BUILD_STATES = {
    "IN_PROGRESS": "in_progress",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "FAULT": "failed",
    "TIMED_OUT": "failed",
    "STOPPED": "canceled",
}
WAITING_PHASES = frozenset({"SUBMITTED", "QUEUED"})
_CONSOLE_TIME = "%b %d, %Y %I:%M:%S %p"


def detect(payload: Any, hint: str | None = None) -> str | None:
    """EventBridge events from aws.codebuild."""
    if not isinstance(payload, Mapping) or payload.get("source") != "aws.codebuild":
        return None
    return DETAIL_TYPES.get(str(payload.get("detail-type")), OTHER)


def event_id(kind: str, payload: Any) -> str | None:
    """EventBridge's event id (a redelivery repeats it)."""
    return str(payload["id"]) if kind in DETAIL_TYPES.values() and payload.get("id") else None


def build_time(payload: Any, path: str, required: bool = True) -> datetime | None:
    """A CodeBuild event time ("Sep 1, 2017 4:12:29 PM", UTC; ISO 8601 is read too)."""
    value = field(payload, path, str, required)
    if value is None:
        return None
    try:
        return datetime.strptime(value.strip(), _CONSOLE_TIME).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        raise PayloadError(path, 'a time such as "Sep 1, 2017 4:12:29 PM" or ISO 8601', value) from None


def build_id(payload: Any) -> str:
    """`project:uuid` from the event's build ARN (`arn:aws:codebuild:...:build/project:uuid`)."""
    arn = field(payload, "detail.build-id", str)
    if arn.startswith("arn:"):
        _, sep, rest = arn.partition(":build/")
        if not sep or not rest:
            raise PayloadError("detail.build-id", "a build ARN ending in build/<project>:<uuid>", arn)
        return rest
    return arn


def _phase_times(payload: Mapping) -> tuple[datetime | None, datetime | None]:
    """(start of the first phase after waiting, start of COMPLETED) from `additional-information.phases`."""
    phases = field(payload, "detail.additional-information.phases", list, required=False) or []
    started = completed = None
    for i, _phase in enumerate(phases):
        where = f"detail.additional-information.phases.{i}"
        kind = field(payload, f"{where}.phase-type", str)
        start = build_time(payload, f"{where}.start-time", required=False)
        if kind == "COMPLETED":
            completed = start
        elif kind not in WAITING_PHASES and start is not None and (started is None or start < started):
            started = start
    return started, completed


def _build(payload: Mapping, config: Any, state: bool) -> list[Update]:
    at = timestamp(payload, "time")
    project = field(payload, "detail.project-name", str)
    started, completed = _phase_times(payload)
    values: dict[str, Any] = {
        "source": NAME,
        "pipeline": project,
        "service": config.service_for_build_project(project),
        "trigger": field(payload, "detail.additional-information.initiator", str, required=False),
        "url": field(payload, "detail.additional-information.logs.deep-link", str, required=False),
        "queued_at": build_time(payload, "detail.additional-information.build-start-time", required=False),
        "started_at": started,
    }
    if state:
        status = choice(payload, "detail.build-status", BUILD_STATES)
        values.update(status=status, status_at=at, finished_at=(completed or at) if status in TERMINAL else None)
    return [Update("pipeline_runs", PREFIX + build_id(payload), values)]


HANDLERS = {"build": partial(_build, state=True), "phase": partial(_build, state=False)}


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """Projection updates for one CodeBuild EventBridge event."""
    return dispatch(HANDLERS, kind, payload, config)
