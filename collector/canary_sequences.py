"""Sequential canaries in the store: each sequence's state and every look, so the next look continues
it in any process or replica, and a restart loses nothing.

Looks are taken optimistically: a look is computed outside any transaction (reading telemetry can take
seconds) and recorded only if the sequence still has the number of looks it was computed from. Of two
processes taking the same look, one records it and the other gets False and reads the recorded one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, RowMapping, select
from sqlalchemy.exc import IntegrityError

from analysis.canary import CanaryConfig, Verdict, config_from_mapping
from analysis.canary.sequential import SequenceState

from .canary_runs import insert_run
from .db import translates_store_errors, write_transaction
from .models import canary_looks, canary_sequences

__all__ = ["CanaryLook", "CanarySequence", "list_looks", "list_sequences", "load_sequence", "record_look"]


@dataclass
class CanarySequence:
    """A stored sequence: what it judges, since when, and the state its next look continues from."""

    key: str
    created_at: datetime
    started_at: datetime
    updated_at: datetime
    config: CanaryConfig
    source: str
    deployment_id: str | None
    baseline_scope: str | None
    canary_scope: str | None
    looks: int
    decision: str | None
    state: SequenceState


@dataclass
class CanaryLook:
    """One look of a sequence: when, how far in, its verdict, and the canary run holding its samples."""

    sequence_key: str
    look: int
    created_at: datetime
    elapsed_s: float
    verdict: str
    run_id: str | None
    result: dict[str, Any]


def _sequence(row: RowMapping) -> CanarySequence:
    return CanarySequence(
        row["key"],
        row["created_at"],
        row["started_at"],
        row["updated_at"],
        config_from_mapping(json.loads(row["config"])),
        row["source"],
        row["deployment_id"],
        row["baseline_scope"],
        row["canary_scope"],
        row["looks"],
        row["decision"],
        SequenceState.from_dict(json.loads(row["state"])),
    )


def _look(row: RowMapping) -> CanaryLook:
    return CanaryLook(
        row["sequence_key"],
        row["look"],
        row["created_at"],
        row["elapsed_s"],
        row["verdict"],
        row["run_id"],
        json.loads(row["result"]),
    )


@translates_store_errors
def load_sequence(engine: Engine, key: str) -> CanarySequence | None:
    """The sequence stored under `key`, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(canary_sequences).where(canary_sequences.c.key == key)).mappings().first()
    return None if row is None else _sequence(row)


@translates_store_errors
def record_look(
    engine: Engine,
    key: str,
    previous: CanarySequence | None,
    new: CanarySequence,
    verdict: Verdict,
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    window: tuple[datetime, datetime],
) -> tuple[bool, str | None]:
    """Record look `new.looks` of the sequence (and its canary run) if the stored sequence is still
    `previous` (None: not stored yet). Returns (recorded, run id); (False, None) when another process
    recorded that look first (the caller reads it with `list_looks`)."""
    now = new.updated_at
    with write_transaction(engine) as conn:
        state = json.dumps(new.state.to_dict())
        values = {"updated_at": now, "looks": new.looks, "decision": new.decision, "state": state}
        if previous is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        canary_sequences.insert(),
                        values
                        | {
                            "key": key,
                            "created_at": new.created_at,
                            "started_at": new.started_at,
                            "config": json.dumps(new.config.to_dict()),
                            "source": new.source,
                            "deployment_id": new.deployment_id,
                            "baseline_scope": new.baseline_scope,
                            "canary_scope": new.canary_scope,
                        },
                    )
            except IntegrityError:
                return False, None
        else:
            updated = conn.execute(
                canary_sequences.update()
                .where(canary_sequences.c.key == key, canary_sequences.c.looks == previous.looks)
                .values(**values)
            )
            if updated.rowcount != 1:
                return False, None
        run_id = insert_run(
            conn,
            new.config,
            verdict,
            samples,
            new.source,
            deployment_id=new.deployment_id,
            window=window,
            baseline_scope=new.baseline_scope,
            canary_scope=new.canary_scope,
            extra={"sequence_key": key},
        )
        conn.execute(
            canary_looks.insert(),
            {
                "sequence_key": key,
                "look": new.looks,
                "created_at": now,
                "elapsed_s": (window[1] - new.started_at).total_seconds(),
                "verdict": verdict.verdict,
                "run_id": run_id,
                "result": json.dumps(verdict.to_dict(), default=str),
            },
        )
    return True, run_id


@translates_store_errors
def list_looks(engine: Engine, key: str) -> list[CanaryLook]:
    """Every look of a sequence, first to last."""
    query = select(canary_looks).where(canary_looks.c.sequence_key == key).order_by(canary_looks.c.look)
    with engine.connect() as conn:
        return [_look(row) for row in conn.execute(query).mappings()]


@translates_store_errors
def list_sequences(engine: Engine, limit: int = 50) -> pd.DataFrame:
    """The latest sequences, newest first (key, started_at, updated_at, looks, decision, deployment_id)."""
    columns = ["key", "started_at", "updated_at", "looks", "decision", "deployment_id"]
    query = (
        select(*(canary_sequences.c[name] for name in columns))
        .order_by(canary_sequences.c.updated_at.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return pd.DataFrame([dict(r) for r in conn.execute(query).mappings()], columns=columns)
