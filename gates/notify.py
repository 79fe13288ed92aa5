"""Notifications: what a gate decision, a failed action, a canary, a deployment or an SLO has to tell
someone, routed by event, service, team and severity to the configured channels (Slack, PagerDuty
Events v2, SNS, a webhook, an NDJSON file), delivered with retries and deduplicated.

Every outcome is stored (`collector.notifications`: sent, failed or suppressed); a failure is logged
at ERROR. Secrets (`${VAR}` in URLs, routing keys and header values) are read when sending and never
logged or stored: the stored body shows the placeholder (or ***) instead."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from analysis.slo import SloStatus
from collector.config import PAGERDUTY_EVENTS_URL, Channel, Config
from collector.gate_decisions import StoredDecision
from collector.notifications import last_sent, record_notification
from collector.timeutil import utcnow
from gatewatch.errors import ActionFailed, ConfigError
from gatewatch.schema import duration_label

from .actions import _expand, aws_client, send_http

__all__ = [
    "Notification",
    "Notifier",
    "burn_rate_notifications",
    "canary_notification",
    "decision_notifications",
    "deployment_notification",
    "message",
]

log = logging.getLogger(__name__)

Clients = Callable[[str, "str | None"], Any]
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


# --- the messages ------------------------------------------------------------------------------------


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


# --- delivery ---------------------------------------------------------------------------------------


def _shown(written: str) -> str:
    """What a secret setting may show: its ${VAR} placeholders, else ***."""
    return written if "${" in written else "***"


@dataclass
class Notifier:
    """Sends notifications with the configuration's channels and routes, recording each outcome in the
    store. `clients(service, region)` gives the boto3 client for SNS (default a fresh session's)."""

    engine: Engine
    config: Config
    clients: Clients | None = None

    @property
    def enabled(self) -> bool:
        """True when any channel is configured."""
        return bool(self.config.notify.channels)

    def send(self, note: Notification, now: datetime | None = None) -> list[dict[str, Any]]:
        """Send `note` to every channel its route picks (its team from the config when not given);
        the stored outcomes. A resolve goes only where the same dedup_key's last sent was a trigger."""
        if not self.enabled:
            return []
        if note.team is None and note.service:
            note = replace(note, team=self.config.team_for(note.service))
        out = []
        for name in self.config.notify.channels_for(note.event, note.service, note.team, note.level):
            row = self.send_to(name, note, now=now)
            if row is not None:
                out.append(row)
        return out

    def send_to(self, name: str, note: Notification, now: datetime | None = None) -> dict[str, Any] | None:
        """Send `note` to channel `name` unless it is a duplicate within the dedupe window (recorded as
        suppressed) or a resolve with nothing to resolve there (None); the stored outcome."""
        channel = self.config.notify.channels[name]
        now = now or utcnow()
        previous = last_sent(self.engine, name, note.dedup_key)
        if note.action == "resolve" and (previous is None or previous["action"] != "trigger"):
            return None
        try:
            body = message(channel, note)
        except Exception as exc:  # a template that does not render (or reaches outside the sandbox)
            error = f"notify channel {name}: template: {type(exc).__name__}: {exc}"
            log.error("notification %s (%s) to channel %s failed: %s", note.event, note.dedup_key, name, error)
            return self._record(name, channel, note, "failed", 0, error, None, now)
        if (
            note.action == "trigger"
            and previous is not None
            and previous["action"] == "trigger"
            and previous["created_at"] > now - self.config.notify.dedupe_window
        ):
            return self._record(name, channel, note, "suppressed", 0, None, body, now)
        try:
            attempts = self._deliver(name, channel, note, body, now)
        except ActionFailed as exc:
            log.error(
                "notification %s (%s) to channel %s failed: %s", note.event, note.dedup_key, name, exc
            )  # the message is scrubbed of secrets where it was made
            return self._record(name, channel, note, "failed", exc.attempts, str(exc), body, now)
        log.info("notification %s (%s) sent to channel %s", note.event, note.dedup_key, name)
        return self._record(name, channel, note, "sent", attempts, None, body, now)

    def _record(
        self,
        name: str,
        channel: Channel,
        note: Notification,
        status: str,
        attempts: int,
        error: str | None,
        body: Any,
        now: datetime,
    ) -> dict[str, Any]:
        return record_notification(
            self.engine,
            event=note.event,
            action=note.action,
            channel=name,
            channel_type=channel.type,
            dedup_key=note.dedup_key,
            severity=note.level,
            status=status,
            summary=note.summary,
            service=note.service,
            team=note.team,
            attempts=attempts,
            error=error,
            decision_id=note.decision_id,
            body=_redacted(channel, body),
            at=now,
        )

    def _deliver(self, name: str, channel: Channel, note: Notification, body: Any, now: datetime) -> int:
        """Send the message; the attempts it took, else ActionFailed (scrubbed of secrets)."""
        what = f"notify channel {name}"
        if channel.type == "file":
            line = json.dumps({"channel": name, "sent_at": now.isoformat(), **body}, default=str)
            try:
                path = Path(channel.path or "")
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
            except OSError as exc:
                raise ActionFailed(f"{what}: cannot append to {channel.path}: {exc.strerror or exc}") from None
            return 1
        if channel.type == "sns":
            return self._publish(what, channel, body)
        settings = self.config.notify
        written_url = channel.url or (PAGERDUTY_EVENTS_URL if channel.type == "pagerduty" else "")
        url = _expand(written_url, "url", what)
        secrets = [(url, written_url)] if url != written_url else []
        headers = {"Content-Type": "application/json", "User-Agent": "gatewatch"}
        for header, value in channel.headers.items():
            headers[header] = _expand(value, f"headers.{header}", what)
            secrets.append((headers[header], "***"))
        if channel.type == "pagerduty":
            key = _expand(channel.routing_key or "", "routing_key", what)
            secrets.append((key, _shown(channel.routing_key or "")))
            body = body | {"routing_key": key}
        data = (body if isinstance(body, str) else json.dumps(body, default=str)).encode("utf-8")
        _, attempts = send_http(
            url,
            channel.method,
            data,
            headers,
            secrets=secrets,
            retries=settings.retries,
            backoff=settings.backoff.total_seconds(),
            timeout=settings.timeout.total_seconds(),
            max_time=settings.max_time.total_seconds(),
            label=f"{what} ({channel.type})",
        )
        return attempts

    def _publish(self, what: str, channel: Channel, body: dict[str, str]) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = (self.clients or aws_client)("sns", channel.region).publish(TopicArn=channel.topic_arn, **body)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
            raise ActionFailed(
                f"{what}: SNS Publish: {error.get('Code', 'Error')}: {error.get('Message') or exc}", attempts
            ) from None
        except BotoCoreError as exc:
            raise ActionFailed(f"{what}: SNS Publish: {exc}") from None
        return response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1

    def test(self, name: str, now: datetime | None = None) -> dict[str, Any]:
        """Send a test message to channel `name` (never deduplicated); the stored outcome."""
        if name not in self.config.notify.channels:
            known = ", ".join(sorted(self.config.notify.channels)) or "none configured (notify.channels)"
            raise ConfigError(f"no notification channel {name!r}; channels: {known}")
        note = Notification(
            "test",
            f"Test notification from Gatewatch to channel {name}: if you can read this, the channel works.",
            f"test:{name}:{uuid.uuid4()}",
            at=now or utcnow(),
        )
        row = self.send_to(name, note, now=now)
        assert row is not None  # a trigger is always sent or recorded
        return row

    def decision(self, stored: StoredDecision) -> list[dict[str, Any]]:
        """Notify a gate decision the call just made (a rollback; a hold on the key's first attempt) and
        each of its actions that failed; never raises (the decision is already stored)."""
        if not self.enabled:
            return []
        try:
            out = []
            for note in decision_notifications(stored, self.config.notify.base_url):
                out += self.send(note)
            return out
        except Exception:  # a notification problem must not undo or hide the stored decision
            log.exception("could not notify decision %s", stored.id)
            return []


def _redacted(channel: Channel, body: Any) -> Any:
    if channel.type == "pagerduty" and isinstance(body, dict):
        return body | {"routing_key": _shown(channel.routing_key or "")}
    return body


# --- the events -------------------------------------------------------------------------------------


def decision_link(base_url: str | None, decision_id: str) -> str | None:
    """The gate API's URL of a decision, when the base URL is configured."""
    return f"{base_url.rstrip('/')}/v1/decisions/{decision_id}" if base_url else None


def decision_notifications(stored: StoredDecision, base_url: str | None = None) -> list[Notification]:
    """What a decision tells: for the call that made it, a rollback, a hold on the key's first attempt,
    and each action that failed."""
    if not stored.first:
        return []
    link = decision_link(base_url, stored.id)
    where = f"{stored.service or 'unknown service'}" + (
        f" (deployment {stored.deployment_id})" if stored.deployment_id else ""
    )
    base = {
        "gate": stored.gate,
        "key": stored.key,
        "attempt": stored.attempt,
        "decision": stored.decision,
        "deployment_id": stored.deployment_id,
        "reasons": stored.reasons,
    }
    out = []
    if stored.decision == "rollback" or (stored.decision == "hold" and stored.attempt == 1):
        reasons = "; ".join(stored.reasons) or "no reason given"
        out.append(
            Notification(
                f"gate_{stored.decision}",
                _cut(f"Gate {stored.gate} decided {stored.decision.upper()} for {where}: {reasons}", SUMMARY_MAX),
                f"gate_{stored.decision}:{stored.key}",
                service=stored.service,
                details=base | {"checks": [_check(c) for c in stored.checks]},
                link=link,
                decision_id=stored.id,
                at=stored.created_at,
            )
        )
    for i, action in enumerate(stored.actions):
        if action.get("status") != "failed":
            continue
        target = action.get("target") or "-"
        out.append(
            Notification(
                "action_failed",
                _cut(
                    f"Action {action.get('type')} {target} for the {stored.decision} of gate {stored.gate} for "
                    f"{where} failed: {action.get('error')}",
                    SUMMARY_MAX,
                ),
                f"action_failed:{stored.id}:{i}",
                service=stored.service,
                details=base | {"action": action},
                link=link,
                decision_id=stored.id,
                at=stored.created_at,
            )
        )
    return out


def _check(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result.get(k) for k in ("name", "status", "effect", "reason")}


def canary_notification(
    verdict: dict[str, Any], run_id: str | None, deployment_id: str | None, service: str | None, at: datetime
) -> Notification | None:
    """A canary `fail` verdict's notification (None for any other verdict)."""
    if verdict.get("verdict") != "fail":
        return None
    reasons = verdict.get("reasons") or []
    subject = f"deployment {deployment_id}" if deployment_id else f"run {run_id}"
    return Notification(
        "canary_fail",
        _cut(
            f"Canary of {subject} failed (score {verdict.get('score')}): {'; '.join(reasons) or 'no reason given'}",
            SUMMARY_MAX,
        ),
        f"canary_fail:{deployment_id or run_id or uuid.uuid4()}",
        service=service,
        details={"run_id": run_id, "deployment_id": deployment_id, "score": verdict.get("score"), "reasons": reasons},
        at=at,
    )


def deployment_notification(deployment: dict[str, Any]) -> Notification:
    """A failed production deployment's notification."""
    service = deployment.get("service")
    version = f" {deployment['version']}" if deployment.get("version") else ""
    return Notification(
        "deployment_failed",
        f"Production deployment{version} of {service or 'unknown service'} failed ({deployment['id']})",
        f"deployment_failed:{deployment['id']}",
        service=service,
        team=deployment.get("team"),
        details={k: v for k, v in deployment.items() if v is not None},
        link=deployment.get("url"),
        at=deployment.get("finished_at"),
    )


def burn_rate_notifications(
    service: str, slo: str, status: SloStatus, runbook: str | None = None
) -> list[Notification]:
    """An SLO's burn-rate notifications at its status: a trigger per severity (page, ticket) with an
    alert firing, a resolve per severity with none; on stale data a `data_stale` trigger and nothing
    resolved (stale data tells nothing is fine)."""
    name = f"{service}/{slo}"
    figures = {
        "slo": slo,
        "sli": status.sli,
        "objective": status.objective,
        "budget_remaining": status.budget_remaining,
        "at": status.at.isoformat(),
        "runbook_url": runbook,
    }
    if status.stale:
        return [
            Notification(
                "data_stale",
                f"SLO {name}: {status.stale}; burn-rate alerts cannot be evaluated",
                f"data_stale:{name}",
                service=service,
                details=figures | {"newest": status.newest.isoformat() if status.newest else None},
                link=runbook,
                at=status.at,
            )
        ]
    out = []
    for severity in ("page", "ticket"):
        alerts = [a for a in status.alerts if a.severity == severity]
        if not alerts:
            continue
        firing = [a for a in alerts if a.firing]
        if not firing and status.gaps:  # gaps say nothing about whether it stopped: resolve nothing
            continue
        if firing:
            rates = ", ".join(
                f"{a.long_burn_rate or 0:.1f}x over {_span(a.long_window)} and {a.short_burn_rate or 0:.1f}x over "
                f"{_span(a.short_window)} (threshold {a.threshold:g}x)"
                for a in firing
            )
            summary = f"SLO {name} burning its error budget: {rates}"
        else:
            summary = f"SLO {name}: {severity} burn-rate alert no longer firing"
        out.append(
            Notification(
                f"burn_rate_{severity}",
                _cut(summary, SUMMARY_MAX),
                f"burn_rate:{name}:{severity}",
                service=service,
                action="trigger" if firing else "resolve",
                details=figures | {"alerts": [a.to_dict() for a in alerts]},
                link=runbook,
                at=status.at,
            )
        )
    return out


def _span(span: timedelta) -> str:
    return duration_label(span)
