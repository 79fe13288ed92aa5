"""How updates from events merge into projection rows, so that ingest is idempotent and the
final rows do not depend on the order in which events arrive.

Every column merges by a rule that is commutative, associative and idempotent:
- the *state* columns of a row (status, status_at and what belongs to that status) are taken
  together from the update with the greatest (status_at, status rank, values): the latest event
  wins, and at equal times a terminal status beats a running one, so a late STARTED never
  overwrites a SUCCEEDED; a deployment's `rolled_back` beats any other status at any time;
- flag columns (`failed_once`, `hotfix`, ...) are OR-ed;
- every other column keeps the smallest non-null value: for first-seen times (`started_at`,
  `opened_at`, `committed_at`) that is the earliest, and descriptive columns are the same in every
  event of an entity, so the rule only makes a disagreement deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, update

from . import models
from .db import DEFAULT_KEY_CHUNK, KEY_CHUNK, bulk_insert, key_filter
from .sources.base import Update
from .timeutil import UTC

RUN_STATUSES = {"queued": 0, "in_progress": 1, "succeeded": 2, "failed": 2, "canceled": 2, "superseded": 2}
DEPLOYMENT_STATUSES = {"pending": 0, "in_progress": 1, "success": 2, "failure": 2, "canceled": 2, "rolled_back": 3}
INCIDENT_STATUSES = {"triggered": 1, "acknowledged": 2, "resolved": 3}
ALARM_STATUSES = {"alarm": 1, "resolved": 2}

TABLES: dict[str, Table] = {t.name: t for t in models.PROJECTION_TABLES}
STATUS_RANKS: dict[str, dict[str, int]] = {
    "pipeline_runs": RUN_STATUSES,
    "stage_runs": RUN_STATUSES,
    "action_runs": RUN_STATUSES,
    "deployments": DEPLOYMENT_STATUSES,
    "incidents": INCIDENT_STATUSES,
    "alarms": ALARM_STATUSES,
}
# A deployment once rolled back stays so: a source's "failure" or "success" stamped later (EventBridge
# times its CodeDeploy FAILURE event on its own clock, the API's completeTime on another) never undoes it.
FINAL_STATUS = {"deployments": "rolled_back"}
STATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "pipeline_runs": ("status", "status_at", "finished_at", "attempt"),
    "stage_runs": ("status", "status_at", "finished_at", "attempt"),
    "action_runs": ("status", "status_at", "finished_at", "external_id", "url"),  # the attempt that set the status
    "deployments": ("status", "status_at", "finished_at"),
    "incidents": ("status", "status_at", "resolved_at", "severity", "title"),
    "changes": (),
    "deployment_changes": (),
    "alarms": ("status", "status_at", "ended_at"),
}
# Writes to these tables fire migration 0006's triggers, which on PostgreSQL take this lock.
CONTENTS_SOURCES = frozenset({"changes", "deployment_changes"})
CONTENTS_LOCK = "SELECT pg_advisory_xact_lock(7301, 0)"
FLAG_COLUMNS = frozenset({"failed_once", "is_rollback", "hotfix", "production"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_COLUMNS = {name: frozenset(table.c.keys()) for name, table in TABLES.items()}
_STATE_WITHOUT_STATUS = {name: frozenset(cols) - {"status"} for name, cols in STATE_COLUMNS.items()}


def validate(upd: Update) -> None:
    """Reject an update a normaliser should never produce (a bug, reported as quarantine)."""
    columns = _COLUMNS.get(upd.table)
    if columns is None:
        raise ValueError(f"unknown projection table {upd.table!r}")
    values = upd.values
    if not columns.issuperset(values):
        raise ValueError(f"{upd.table}: unknown column(s) {sorted(set(values) - columns)}")
    status = values.get("status")
    if status is None:
        if not _STATE_WITHOUT_STATUS[upd.table].isdisjoint(values):
            raise ValueError(
                f"{upd.table}: {sorted(_STATE_WITHOUT_STATUS[upd.table] & set(values))} given without a status"
            )
    elif status not in STATUS_RANKS.get(upd.table, ()):
        raise ValueError(f"{upd.table}: status {status!r} is not one of {sorted(STATUS_RANKS.get(upd.table, ()))}")
    # Naive datetimes are refused where every timestamp is written (db.bulk_insert, UTCDateTime).


def _newer(table: str, new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether `new`'s state wins over `old`'s: later status_at, then higher rank, then the values."""
    ranks = STATUS_RANKS[table]
    final = FINAL_STATUS.get(table)  # beats any other status whatever its time
    a = (new["status"] == final, new.get("status_at") or _EPOCH, ranks[new["status"]])
    b = (old["status"] == final, old.get("status_at") or _EPOCH, ranks[old["status"]])
    if a != b:
        return a > b
    cols = STATE_COLUMNS[table]  # a full tie: any deterministic order will do
    return tuple("" if new.get(c) is None else str(new.get(c)) for c in cols) > tuple(
        "" if old.get(c) is None else str(old.get(c)) for c in cols
    )


def merge(table: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Join two partial rows of `table` by the rules in the module docstring."""
    out = dict(old)
    state_cols = STATE_COLUMNS[table]
    if new.get("status") is not None and (old.get("status") is None or _newer(table, new, old)):
        for col in state_cols:
            out[col] = new.get(col)
    for col, value in new.items():
        if value is None or col in state_cols:
            continue
        current = out.get(col)
        if current is None:
            out[col] = value
        elif col in FLAG_COLUMNS:
            out[col] = bool(current or value)
        elif value < current:
            out[col] = value
    return out


def fold(updates: Iterable[Update]) -> dict[str, dict[str, dict[str, Any]]]:
    """Merge updates in memory: {table: {key: partial row}}."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for upd in updates:
        per_table = rows.setdefault(upd.table, {})
        values = dict(upd.values)
        values["id"] = upd.key
        if values.get("status") is not None:
            for col in STATE_COLUMNS[upd.table]:
                values.setdefault(col, None)
        current = per_table.get(upd.key)
        per_table[upd.key] = values if current is None else merge(upd.table, current, values)
    return rows


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def apply(conn: Connection, updates: Iterable[Update]) -> int:
    """Merge updates into the projection tables inside the caller's transaction; rows written."""
    written = 0
    lock = conn.dialect.name == "postgresql"
    folded = fold(updates)
    if lock and not folded.keys().isdisjoint(CONTENTS_SOURCES):
        # Before any row lock: the lock the deployment_contents triggers take (a transaction that
        # took row locks first could deadlock with one that holds it and wants them).
        conn.exec_driver_sql(CONTENTS_LOCK)
    for name, rows in folded.items():
        table = TABLES[name]
        keys = sorted(rows)
        existing: dict[str, dict[str, Any]] = {}
        query = select(table).where(key_filter(table.c.id, conn.dialect.name)).order_by(table.c.id)
        if lock:
            query = query.with_for_update()
        for chunk in _chunks(keys, KEY_CHUNK.get(conn.dialect.name, DEFAULT_KEY_CHUNK)):
            for found in conn.execute(query, {"keys": chunk}).mappings():
                existing[found["id"]] = dict(found)
        inserts, changed = [], []
        for key in keys:
            row = rows[key]
            if key in existing:
                merged = merge(name, existing[key], row)
                if merged != existing[key]:
                    merged["_key"] = merged.pop("id")
                    changed.append(merged)
            else:
                inserts.append(row)
        bulk_insert(conn, table, inserts)
        if changed:
            conn.execute(update(table).where(table.c.id == bindparam("_key")), changed)
        written += len(inserts) + len(changed)
    return written
