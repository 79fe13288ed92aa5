"""Notifications in the store: every one sent, failed or suppressed (a duplicate within the dedupe
window), so nothing is silently dropped; and what the notification scan reads (failed production
deployments)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from .db import translates_store_errors, write_transaction
from .loaders import reading
from .models import deployments, notifications
from .timeutil import utcnow

__all__ = [
    "STATUSES",
    "deployment_owner",
    "failed_deployments",
    "last_sent",
    "list_notifications",
    "record_notification",
]

STATUSES = ("sent", "failed", "suppressed")


@translates_store_errors
def record_notification(
    engine: Engine,
    *,
    event: str,
    action: str,
    channel: str,
    channel_type: str,
    dedup_key: str,
    severity: str,
    status: str,
    summary: str,
    service: str | None = None,
    team: str | None = None,
    attempts: int = 0,
    error: str | None = None,
    decision_id: str | None = None,
    body: Any = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Store one notification's outcome (`body` and `error` already redacted); the row as stored."""
    if status not in STATUSES:
        raise ValueError(f"notification status {status!r}: expected one of {', '.join(STATUSES)}")
    row = {
        "id": str(uuid.uuid4()),
        "created_at": at or utcnow(),
        "event": event,
        "action": action,
        "channel": channel,
        "channel_type": channel_type,
        "dedup_key": dedup_key[:255],
        "service": service,
        "team": team,
        "severity": severity,
        "status": status,
        "attempts": attempts,
        "error": error,
        "summary": summary,
        "decision_id": decision_id,
        "body": None if body is None else json.dumps(body, default=str),
    }
    with write_transaction(engine) as conn:
        conn.execute(notifications.insert(), row)
    return _parsed(row)


@translates_store_errors
def last_sent(engine: Engine, channel: str, dedup_key: str) -> dict[str, Any] | None:
    """The newest notification sent to `channel` under `dedup_key` (None when none was), for dedupe:
    a trigger already sent within the window is not sent again; a resolve only follows a trigger."""
    n = notifications
    query = (
        select(n)
        .where(n.c.channel == channel, n.c.dedup_key == dedup_key[:255], n.c.status == "sent")
        .order_by(n.c.created_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return _parsed(dict(row)) if row else None


@translates_store_errors
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
    """Stored notifications, newest first, filtered by status (sent, failed, suppressed), creation time
    (`since`, inclusive), channel, service and team; each with its body parsed."""
    n = notifications
    conditions = []
    for column, value in ((n.c.status, status), (n.c.channel, channel), (n.c.service, service), (n.c.team, team)):
        if value is not None:
            conditions.append(column == value)
    if since is not None:
        conditions.append(n.c.created_at >= since)
    query = select(n).where(*conditions).order_by(n.c.created_at.desc(), n.c.id).limit(limit)
    with engine.connect() as conn:
        return [_parsed(dict(row)) for row in conn.execute(query).mappings()]


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    body = row.get("body")
    return row | {"body": json.loads(body) if isinstance(body, str) else body}


@translates_store_errors
def failed_deployments(engine: Engine, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Production deployments that failed (status `failure`) and finished in [since, until), newest first."""
    d = deployments
    query = (
        select(d.c.id, d.c.service, d.c.team, d.c.environment, d.c.version, d.c.url, d.c.finished_at)
        .where(d.c.production.is_(True), d.c.status == "failure", d.c.finished_at >= since, d.c.finished_at < until)
        .order_by(d.c.finished_at.desc(), d.c.id)
    )
    with reading(engine) as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


@translates_store_errors
def deployment_owner(engine: Engine, deployment_id: str) -> tuple[str | None, str | None]:
    """A stored deployment's (service, team); (None, None) when it is not stored."""
    d = deployments
    with engine.connect() as conn:
        row = conn.execute(select(d.c.service, d.c.team).where(d.c.id == deployment_id)).first()
    return (row[0], row[1]) if row else (None, None)
