"""Amazon CloudWatch: "CloudWatch Alarm State Change" EventBridge events as alarm episodes.

- An episode is one stay of an alarm in ALARM, keyed by the alarm (its ARN, `resources[0]`, else
  built from account, region and alarmName) and the time it entered ALARM. The event entering ALARM
  gives that time as `detail.state.timestamp`, the event leaving it as `detail.previousState.timestamp`,
  so either event alone makes the same row and the order of arrival does not matter.
- Status is `alarm` while in ALARM and `resolved` (with `ended_at`) once it left ALARM; `reason` is
  why it entered ALARM (the entering state's reason, which the leaving event repeats as its previous state).
- Transitions between OK and INSUFFICIENT_DATA project nothing; other CloudWatch events (alarm
  configuration changes) are archived only.
- The service is `config.service_for_alarm(alarmName, dimensions)`: the configured map by name or
  glob, else a metric dimension named `service` or `ServiceName`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .base import Update, choice, dispatch, field, timestamp

NAME = "cloudwatch"
STATE_CHANGE = "alarm-state-change"
DETAIL_TYPES = {"CloudWatch Alarm State Change": STATE_CHANGE}
STATES = {"OK": "OK", "ALARM": "ALARM", "INSUFFICIENT_DATA": "INSUFFICIENT_DATA"}


def detect(payload: Any, hint: str | None = None) -> str | None:
    """EventBridge events from aws.cloudwatch: alarm state changes, anything else archived as `other`."""
    if not isinstance(payload, Mapping) or payload.get("source") != "aws.cloudwatch" or "detail-type" not in payload:
        return None
    return DETAIL_TYPES.get(str(payload["detail-type"]), "other")


def event_id(kind: str, payload: Any) -> str | None:
    """EventBridge's event id (a redelivery repeats it)."""
    return str(payload["id"]) if payload.get("id") else None


def _alarm_arn(payload: Mapping, name: str) -> str:
    resources = field(payload, "resources", list, required=False) or []
    if resources and isinstance(resources[0], str) and resources[0]:
        return resources[0]
    region, account = field(payload, "region"), field(payload, "account")
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def _dimensions(payload: Mapping) -> dict[str, str]:
    """The dimensions of the alarm's metrics (the first metric naming a dimension wins)."""
    found: dict[str, str] = {}
    for i in range(len(field(payload, "detail.configuration.metrics", list, required=False) or [])):
        dims = field(payload, f"detail.configuration.metrics.{i}.metricStat.metric.dimensions", dict, required=False)
        for key, value in (dims or {}).items():
            if isinstance(value, str):
                found.setdefault(key, value)
    return found


def _episode_key(arn: str, entered: str) -> str:
    key = f"cloudwatch:{arn}@{entered}"
    if len(key) <= 255:
        return key
    return f"cloudwatch:sha256:{hashlib.sha256(arn.encode()).hexdigest()}@{entered}"  # an ARN can be long


def _state_change(payload: Mapping, config: Any) -> list[Update]:
    name = field(payload, "detail.alarmName")
    state = choice(payload, "detail.state.value", STATES)
    previous = choice(payload, "detail.previousState.value", STATES)
    if state == "ALARM":
        entered = timestamp(payload, "detail.state.timestamp")
        values: dict[str, Any] = {
            "status": "alarm",
            "status_at": entered,
            "ended_at": None,
            "reason": field(payload, "detail.state.reason", required=False),
        }
    elif previous == "ALARM":
        entered = timestamp(payload, "detail.previousState.timestamp")
        left = timestamp(payload, "detail.state.timestamp")
        values = {
            "status": "resolved",
            "status_at": left,
            "ended_at": left,
            "reason": field(payload, "detail.previousState.reason", required=False),
        }
    else:
        return []
    arn = _alarm_arn(payload, name)
    region = arn.split(":")[3] if arn.count(":") >= 3 else ""
    values.update(
        source=NAME,
        name=name,
        service=config.service_for_alarm(name, _dimensions(payload)),
        started_at=entered,
        url=(
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(name)}"
            if region
            else None
        ),
    )
    return [Update("alarms", _episode_key(arn, entered.isoformat()), values)]


HANDLERS = {STATE_CHANGE: _state_change}


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """The alarm episode an alarm state change starts or ends; other events give none."""
    return dispatch(HANDLERS, kind, payload, config)
