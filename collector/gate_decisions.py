"""Gate decisions in the store, one per idempotency key and attempt: the first writer wins, and every
later call gets the stored decision (so a retried pipeline step never acts twice).

`promote` and `rollback` are final for a key. `hold` means "ask again": the next call with the key
evaluates anew as attempt 2, 3, ... (how a polling controller or a CodePipeline continuation waits)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from .db import translates_store_errors, write_transaction
from .models import gate_decisions
from .timeutil import utcnow


@dataclass
class StoredDecision:
    """A decision as stored, with `first` telling whether this call made it (and may act on it)."""

    id: str
    key: str
    attempt: int
    gate: str
    decision: str
    created_at: datetime
    deployment_id: str | None
    service: str | None
    checks: list[dict[str, Any]]
    reasons: list[str]
    actions: list[dict[str, Any]]
    evidence: dict[str, Any] = field(default_factory=dict)
    first: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "attempt": self.attempt,
            "gate": self.gate,
            "decision": self.decision,
            "created_at": self.created_at.isoformat(),
            "deployment_id": self.deployment_id,
            "service": self.service,
            "checks": self.checks,
            "reasons": self.reasons,
            "actions": self.actions,
            "evidence": self.evidence,
            "replayed": not self.first,
        }


def _from_row(row, first: bool = False) -> StoredDecision:
    return StoredDecision(
        row["id"],
        row["key"],
        row["attempt"],
        row["gate"],
        row["decision"],
        row["created_at"],
        row["deployment_id"],
        row["service"],
        json.loads(row["checks"]),
        json.loads(row["reasons"]),
        json.loads(row["actions"]),
        json.loads(row["evidence"] or "{}"),
        first,
    )


@translates_store_errors
def get_decision(engine: Engine, *, decision_id: str | None = None, key: str | None = None) -> StoredDecision | None:
    """A stored decision by id, or the latest attempt under an idempotency key."""
    column, value = (gate_decisions.c.id, decision_id) if decision_id else (gate_decisions.c.key, key)
    query = select(gate_decisions).where(column == value).order_by(gate_decisions.c.attempt.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return _from_row(row) if row else None


@translates_store_errors
def record_decision(
    engine: Engine,
    key: str,
    gate: str,
    decision: str,
    checks: list[dict],
    reasons: list[str],
    *,
    attempt: int = 1,
    deployment_id: str | None = None,
    service: str | None = None,
    evidence: dict | None = None,
) -> StoredDecision:
    """Store a decision under (`key`, `attempt`) unless one is there already; returns what is stored.

    The unique (key, attempt) makes this safe across processes: of two racing writers one inserts
    (`first`), the other gets the winner's decision."""
    row = {
        "id": str(uuid.uuid4()),
        "key": key,
        "attempt": attempt,
        "gate": gate,
        "decision": decision,
        "created_at": utcnow(),
        "deployment_id": deployment_id,
        "service": service,
        "checks": json.dumps(checks, default=str),
        "reasons": json.dumps(reasons),
        "actions": "[]",
        "evidence": json.dumps(evidence or {}, default=str),
    }
    try:
        with write_transaction(engine) as conn:
            conn.execute(gate_decisions.insert(), row)
    except IntegrityError:
        with engine.connect() as conn:
            found = (
                conn.execute(
                    select(gate_decisions).where(gate_decisions.c.key == key, gate_decisions.c.attempt == attempt)
                )
                .mappings()
                .first()
            )
        if found is None:  # pragma: no cover - a unique violation on another column
            raise
        return _from_row(found)
    return _from_row(row | {"created_at": row["created_at"]}, first=True)


@translates_store_errors
def record_actions(engine: Engine, decision_id: str, actions: list[dict[str, Any]]) -> None:
    """Store the actions a decision took and their outcomes."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(gate_decisions)
            .where(gate_decisions.c.id == decision_id)
            .values(actions=json.dumps(actions, default=str))
        )


@translates_store_errors
def update_actions(
    engine: Engine, decision_id: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]
) -> list[dict[str, Any]] | None:
    """Read-modify-write a decision's actions under its row lock (PostgreSQL `FOR UPDATE`; SQLite takes
    the write lock at BEGIN), so two callers never both claim one action. `change` gets the stored
    actions and returns the new ones, or None to leave them; returns what was written (None if nothing)."""
    where = gate_decisions.c.id == decision_id
    with write_transaction(engine) as conn:
        text = conn.execute(select(gate_decisions.c.actions).where(where).with_for_update()).scalar_one_or_none()
        if text is None:
            return None
        new = change(json.loads(text))
        if new is None:
            return None
        conn.execute(update(gate_decisions).where(where).values(actions=json.dumps(new, default=str)))
    return new


@translates_store_errors
def list_decisions(engine: Engine, limit: int = 100, gate: str | None = None) -> pd.DataFrame:
    """The latest decisions, newest first (the audit log)."""
    query = select(gate_decisions).order_by(gate_decisions.c.created_at.desc()).limit(limit)
    if gate:
        query = query.where(gate_decisions.c.gate == gate)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    return pd.DataFrame(rows, columns=[c.name for c in gate_decisions.columns])
