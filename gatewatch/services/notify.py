"""Notifications: send a test message to a channel, notify an SLO's burn-rate alerts, scan the store and
the SLOs for what to notify (deduplication makes repeated scans safe), run that scan periodically,
and list what was sent, failed or suppressed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from analysis.slo import SloSpec, SloStatus
from collector import notifications as store
from collector.config import Config
from collector.redaction import scrubbed_traceback
from collector.timeutil import utcnow
from gates.notify import Notification, Notifier, burn_rate_notifications, deployment_notification
from gatewatch.errors import ConfigError, GatewatchError

from . import slos

__all__ = [
    "NotifyScan",
    "list_notifications",
    "notify_slo",
    "scan_notifications",
    "start_notify_scanner",
    "test_channel",
]

log = logging.getLogger(__name__)

Clients = Callable[[str, "str | None"], Any]


def test_channel(engine: Engine, config: Config, channel: str, clients: Clients | None = None) -> dict[str, Any]:
    """Send a test message to `channel`; the stored outcome (status sent or failed, attempts, error).
    ConfigError when no such channel is configured."""
    return Notifier(engine, config, clients).test(channel)


def list_notifications(
    engine: Engine,
    *,
    status: str | None = None,
    since: datetime | None = None,
    channel: str | None = None,
    service: str | None = None,
    team: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Stored notifications, newest first: {id, created_at, event, action, channel, channel_type,
    dedup_key, service, team, severity, status, attempts, error, summary, decision_id, body}, filtered
    by status (sent, failed, suppressed), `since`, channel, service and team. The failed ones since a
    time are what the On-call page shows."""
    if status is not None and status not in store.STATUSES:
        raise ConfigError(f"status {status!r}: expected one of {', '.join(store.STATUSES)}")
    return store.list_notifications(
        engine, status=status, since=since, channel=channel, service=service, team=team, limit=limit
    )


def notify_slo(
    engine: Engine, config: Config, spec: SloSpec, status: SloStatus, clients: Clients | None = None
) -> list[dict[str, Any]]:
    """Notify an SLO's burn-rate alerts at `status` (a page or ticket firing: trigger; stopped: resolve;
    stale data: data_stale); the stored outcomes."""
    notifier = Notifier(engine, config, clients)
    runbook = getattr(spec, "runbook_url", None) or config.runbooks.get(spec.service)
    out: list[dict[str, Any]] = []
    for note in burn_rate_notifications(spec.service, spec.name, status, runbook):
        out += notifier.send(note)
    return out


@dataclass
class NotifyScan:
    """What a scan notified (the stored outcomes) and what it could not read."""

    at: datetime
    notifications: list[dict[str, Any]] = field(default_factory=list)
    slos: int = 0
    failed_deployments: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many outcomes have `status` (sent, failed, suppressed)."""
        return sum(1 for n in self.notifications if n["status"] == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "slos": self.slos,
            "failed_deployments": self.failed_deployments,
            "sent": self.count("sent"),
            "failed": self.count("failed"),
            "suppressed": self.count("suppressed"),
            "notifications": self.notifications,
            "errors": self.errors,
        }


def scan_notifications(
    engine: Engine, config: Config, now: datetime | None = None, clients: Clients | None = None
) -> NotifyScan:
    """Notify what is wrong now: every SLO's burn-rate alerts of the configured folder (an SLI that
    cannot be read, or is stale, is a data_stale notification) and the production deployments that
    failed within the dedupe window. Repeating it sends nothing twice within the window."""
    now = now or utcnow()
    found = NotifyScan(now)
    notifier = Notifier(engine, config, clients)
    if not notifier.enabled:
        found.errors.append("no notification channels configured (notify.channels in gatewatch.yaml)")
        return found
    if config.slos:
        try:
            specs = slos.load_slos(config.slos)
        except GatewatchError as exc:
            specs = []
            found.errors.append(str(exc))
        for spec in specs:
            found.slos += 1
            try:
                status = slos.slo_status(config, spec, now)
            except GatewatchError as exc:  # unreadable is no better than stale: say so
                found.errors.append(f"SLO {spec.service}/{spec.name}: {exc}")
                note = Notification(
                    "data_stale",
                    f"SLO {spec.service}/{spec.name}: its SLI cannot be read ({exc})",
                    f"data_stale:{spec.service}/{spec.name}",
                    service=spec.service,
                    at=now,
                )
                found.notifications += notifier.send(note, now=now)
                continue
            found.notifications += notify_slo(engine, config, spec, status, clients)
    failed = store.failed_deployments(engine, now - config.notify.dedupe_window, now)
    found.failed_deployments = len(failed)
    for deployment in failed:
        found.notifications += notifier.send(deployment_notification(deployment), now=now)
    return found


def start_notify_scanner(
    engine: Engine, config: Config, stop: threading.Event, clients: Clients | None = None
) -> threading.Thread | None:
    """Run `scan_notifications` every `notify.scan_interval` in a daemon thread until `stop` is set;
    None (nothing started) when the interval is 0 or no channel is configured."""
    interval = config.notify.scan_interval.total_seconds()
    if interval <= 0 or not config.notify.channels:
        return None

    def loop() -> None:
        while not stop.is_set():
            try:
                scan = scan_notifications(engine, config, clients=clients)
                for error in scan.errors:
                    log.warning("notification scan: %s", error)
            except Exception:  # the server keeps serving; the next scan tries again
                log.error("notification scan failed:\n%s", scrubbed_traceback())
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="gatewatch-notify-scan", daemon=True)
    thread.start()
    return thread
