"""What a notification says, and the message each channel type gets for it: Slack Block Kit, a PagerDuty
Events API v2 event, SNS Publish's Subject and Message, a webhook body from a sandboxed Jinja2
template, a file's JSON line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.config import Channel
from collector.timeutil import utcnow

__all__ = [
    "EVENT_SEVERITY",
    "SUBJECT_MAX",
    "SUMMARY_MAX",
    "Notification",
    "message",
    "pagerduty_event",
    "slack_message",
    "sns_message",
    "webhook_body",
]

EVENT_SEVERITY = {
    "gate_rollback": "error",
    "gate_hold": "warning",
    "action_failed": "critical",
    "canary_fail": "error",
    "deployment_failed": "error",
    "burn_rate_page": "critical",
    "burn_rate_ticket": "warning",
    "data_stale": "warning",
    "test": "info",
}
TITLES = {
    "gate_rollback": "Gate decided ROLLBACK",
    "gate_hold": "Gate decided HOLD",
    "action_failed": "Rollback action FAILED",
    "canary_fail": "Canary FAILED",
    "deployment_failed": "Production deployment FAILED",
    "burn_rate_page": "Error budget burning fast (page)",
    "burn_rate_ticket": "Error budget burning (ticket)",
    "data_stale": "SLI data stale",
    "test": "Test notification",
}
SUMMARY_MAX = 1024  # PagerDuty's payload.summary limit
SUBJECT_MAX = 100  # SNS's Subject limit


@dataclass(frozen=True)
class Notification:
    """Something to tell: the event, `trigger` or `resolve`, a summary, the stable key that dedupes it
    (and that PagerDuty resolves by), severity, service and team (routing), details and a link."""

    event: str
    summary: str
    dedup_key: str
    severity: str = ""  # default: the event's (EVENT_SEVERITY)
    service: str | None = None
    team: str | None = None
    action: str = "trigger"
    details: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    decision_id: str | None = None
    at: datetime | None = None

    @property
    def level(self) -> str:
        """The severity: given, else the event's."""
        return self.severity or EVENT_SEVERITY.get(self.event, "info")

    def to_dict(self) -> dict[str, Any]:
        """The notification as a webhook template, a file line and SNS see it."""
        return {
            "event": self.event,
            "action": self.action,
            "summary": self.summary,
            "severity": self.level,
            "service": self.service,
            "team": self.team,
            "dedup_key": self.dedup_key,
            "decision_id": self.decision_id,
            "link": self.link,
            "at": self.at.isoformat() if self.at else None,
            "details": self.details,
        }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(note: Notification) -> str:
    title = TITLES.get(note.event, note.event)
    return ("RESOLVED: " if note.action == "resolve" else "") + title + (f": {note.service}" if note.service else "")


def slack_message(note: Notification) -> dict[str, Any]:
    """A Slack Block Kit message: `text` (the notification fallback) and blocks (header, summary,
    fields, reasons, a button to the decision, the dedup key)."""
    fields = [
        {"type": "mrkdwn", "text": f"*{name}*\n{value}"}
        for name, value in (
            ("Service", note.service),
            ("Team", note.team),
            ("Severity", note.level),
            ("Event", note.event),
        )
        if value
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(_title(note), 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(note.summary, 3000)}},
        {"type": "section", "fields": fields},
    ]
    reasons = note.details.get("reasons") or []
    if reasons:
        text = "*Reasons*\n" + "\n".join(f"• {r}" for r in reasons)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}})
    if note.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": note.link}],
            }
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"gatewatch · {note.dedup_key}"}]})
    prefix = "[RESOLVED] " if note.action == "resolve" else f"[{note.level.upper()}] "
    return {"text": _cut(prefix + note.summary, 3000), "blocks": blocks}


def pagerduty_event(note: Notification, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: a trigger with its payload and links, or a resolve of the
    same dedup_key."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": note.action,
        "dedup_key": note.dedup_key[:255],
    }
    if note.action == "resolve":
        return event
    payload = {
        "summary": _cut(note.summary, SUMMARY_MAX),
        "source": note.service or "gatewatch",
        "severity": note.level,
        "timestamp": (note.at or utcnow()).isoformat(),
        "component": note.service,
        "group": note.team,
        "class": note.event,
        "custom_details": note.details,
    }
    event["payload"] = {k: v for k, v in payload.items() if v is not None}
    event["client"] = "Gatewatch"
    if note.link:
        event["links"] = [{"href": note.link, "text": TITLES.get(note.event, note.event)}]
    return event


def sns_message(note: Notification) -> dict[str, str]:
    """SNS Publish's Subject (one line, at most 100 characters) and Message (the notification as JSON)."""
    subject = re.sub(r"[^\x20-\x7e]+", " ", f"[{note.level}] {_title(note)}").strip()
    return {"Subject": _cut(subject, SUBJECT_MAX).replace("…", "~"), "Message": json.dumps(note.to_dict(), default=str)}


def webhook_body(note: Notification, template: str | None) -> str:
    """A webhook's body: the template rendered (sandboxed) with `notification` and its fields, else
    the notification as JSON."""
    if template is None:
        return json.dumps(note.to_dict(), default=str)
    from jinja2.sandbox import SandboxedEnvironment

    values = note.to_dict()
    environment = SandboxedEnvironment(autoescape=False)
    environment.filters["tojson"] = lambda value: json.dumps(value, default=str)
    return environment.from_string(template).render(notification=values, **values)


def message(channel: Channel, note: Notification) -> Any:
    """What `channel` is sent for `note` (a PagerDuty event's routing key as configured: not expanded)."""
    if channel.type == "slack":
        return slack_message(note)
    if channel.type == "pagerduty":
        return pagerduty_event(note, channel.routing_key or "")
    if channel.type == "sns":
        return sns_message(note)
    if channel.type == "webhook":
        return webhook_body(note, channel.template)
    return note.to_dict()
