"""Sending notifications: routed to the configured channels, deduplicated within the window, HTTP
retried with backoff (the webhook action's sender), every outcome stored (sent, failed, suppressed)
and a failure logged at ERROR, with no secret in any log line or stored row."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from collector.config import PAGERDUTY_EVENTS_URL, Channel, Config
from collector.gate_decisions import StoredDecision
from collector.notifications import last_sent, record_notification
from collector.redaction import scrub, scrubbed_traceback
from collector.timeutil import utcnow
from gatewatch.errors import ActionFailed, ConfigError
from gatewatch.metrics import count_notification

from ..actions import _checked_url, _expand, aws_client, send_http
from .events import action_failed_notifications, decision_notifications
from .messages import Notification, message

__all__ = ["Notifier"]

log = logging.getLogger(__name__)

Clients = Callable[[str, "str | None"], Any]  # (service name, region or None) -> a boto3 client


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
            error = scrub(f"notify channel {name}: template: {type(exc).__name__}: {exc}")
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
        except Exception as exc:  # unexpected, but recorded all the same: nothing is silently dropped
            error = f"notify channel {name}: {type(exc).__name__}"
            log.error("notification %s (%s) to channel %s failed: %s", note.event, note.dedup_key, name, error)
            return self._record(name, channel, note, "failed", 1, error, body, now)
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
        count_notification(name, status)
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
        url = _checked_url(_expand(written_url, "url", what), written_url, what)
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
            log.error("could not notify decision %s:\n%s", stored.id, scrubbed_traceback())
            return []

    def retried(self, stored: StoredDecision, positions: list[int]) -> list[dict[str, Any]]:
        """Notify the actions at `positions` that a retry re-attempted and that failed again; never raises."""
        if not self.enabled:
            return []
        try:
            out = []
            for note in action_failed_notifications(stored, self.config.notify.base_url, positions):
                out += self.send(note)
            return out
        except Exception:
            log.error("could not notify the retried actions of decision %s:\n%s", stored.id, scrubbed_traceback())
            return []


def _redacted(channel: Channel, body: Any) -> Any:
    if channel.type == "pagerduty" and isinstance(body, dict):
        return body | {"routing_key": _shown(channel.routing_key or "")}
    return body
