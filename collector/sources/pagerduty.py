"""PagerDuty webhooks v3: incident.triggered, .acknowledged, .resolved (and .reopened) as incidents.

Other incident events (annotated, priority_updated, ...) are archived and change nothing. The
incident's service maps through `services.pagerduty` in gatewatch.yaml (by id or name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Update, field, timestamp

NAME = "pagerduty"
STATES = {
    "incident.triggered": "triggered",
    "incident.reopened": "triggered",
    "incident.acknowledged": "acknowledged",
    "incident.resolved": "resolved",
    "incident.unacknowledged": "triggered",
}


def detect(payload: Any, hint: str | None = None) -> str | None:
    """A v3 webhook: {"event": {"event_type": "incident.*", ...}}."""
    if type(payload) is not dict and not isinstance(payload, Mapping):
        return None
    event = payload.get("event")
    if (
        isinstance(event, Mapping)
        and isinstance(event.get("event_type"), str)
        and event["event_type"].startswith("incident.")
    ):
        return event["event_type"]
    return None


def event_id(kind: str, payload: Any) -> str | None:
    """PagerDuty's own event id (redeliveries repeat it)."""
    event = payload.get("event") if isinstance(payload, Mapping) else None
    value = event.get("id") if isinstance(event, Mapping) else None
    return str(value) if value else None


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """One incident row update per state change; other incident events give nothing."""
    status = STATES.get(kind)
    if status is None:
        return []
    at = timestamp(payload, "event.occurred_at")
    incident_id = field(payload, "event.data.id", str)
    service_id = field(payload, "event.data.service.id", str, required=False)
    service_name = field(payload, "event.data.service.summary", str, required=False)
    priority = field(payload, "event.data.priority.summary", str, required=False)
    values: dict[str, Any] = {
        "source": NAME,
        "service": config.service_for_pagerduty(service_id, service_name),
        "title": field(payload, "event.data.title", str, required=False),
        "severity": priority or field(payload, "event.data.urgency", str, required=False),
        "url": field(payload, "event.data.html_url", str, required=False),
        "status": status,
        "status_at": at,
        "resolved_at": at if status == "resolved" else None,
    }
    created = timestamp(payload, "event.data.created_at", required=False)
    if created or status == "triggered":
        values["opened_at"] = created or at
    if status == "acknowledged":
        values["acknowledged_at"] = at
    return [Update("incidents", f"pagerduty:{incident_id}", values)]
