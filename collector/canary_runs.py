"""Canary runs in the store: every verdict with its config, window, scopes and the samples it judged,
so any verdict can be audited and re-judged later."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select

from analysis.canary import CanaryConfig, Verdict, config_from_mapping

from .db import translates_store_errors, write_transaction
from .models import canary_metric_results, canary_runs, canary_samples
from .telemetry.samples import Telemetry
from .timeutil import utcnow


@dataclass
class CanaryOutcome:
    """A canary just judged: its verdict, the stored run's id (None when not stored), what was read."""

    verdict: Verdict
    run_id: str | None
    telemetry: Telemetry


@dataclass
class CanaryRun:
    """A stored canary run."""

    id: str
    created_at: datetime
    verdict: str
    score: float | None
    source: str
    deployment_id: str | None
    window_start: datetime | None
    window_end: datetime | None
    baseline_scope: str | None
    canary_scope: str | None
    config: CanaryConfig
    result: dict[str, Any]
    samples: dict[str, tuple[np.ndarray, np.ndarray]]


def _pack(values: np.ndarray) -> tuple[str, bytes]:
    array = np.ascontiguousarray(values, dtype="<f8")
    return ",".join(map(str, array.shape)), array.tobytes()


def _unpack(shape: str, data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f8").reshape(tuple(int(n) for n in shape.split(",")))


@translates_store_errors
def save_run(
    engine: Engine,
    config: CanaryConfig,
    verdict: Verdict,
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    source: str,
    *,
    deployment_id: str | None = None,
    window: tuple[datetime, datetime] | None = None,
    baseline_scope: str | None = None,
    canary_scope: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Store a verdict with what it was judged from; returns the run id."""
    with write_transaction(engine) as conn:
        return insert_run(
            conn,
            config,
            verdict,
            samples,
            source,
            deployment_id=deployment_id,
            window=window,
            baseline_scope=baseline_scope,
            canary_scope=canary_scope,
            extra=extra,
        )


def insert_run(
    conn: Connection,
    config: CanaryConfig,
    verdict: Verdict,
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    source: str,
    *,
    deployment_id: str | None = None,
    window: tuple[datetime, datetime] | None = None,
    baseline_scope: str | None = None,
    canary_scope: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """`save_run` inside the caller's transaction (a sequential look stores its run with the look)."""
    run_id = str(uuid.uuid4())
    result = verdict.to_dict() | dict(extra or {})
    conn.execute(
        canary_runs.insert(),
        {
            "id": run_id,
            "created_at": utcnow(),
            "verdict": verdict.verdict,
            "score": verdict.score,
            "source": source,
            "deployment_id": deployment_id,
            "window_start": window[0] if window else None,
            "window_end": window[1] if window else None,
            "baseline_scope": baseline_scope,
            "canary_scope": canary_scope,
            "config": json.dumps(config.to_dict()),
            "result": json.dumps(result, default=str),
        },
    )
    rows = []
    for m in verdict.metrics:
        rows.append(
            {
                "run_id": run_id,
                "metric": m.name,
                "classification": m.classification,
                "passed": m.passed,
                "critical": m.critical,
                "metric_group": m.group,
                "weight": m.weight,
                "baseline_n": m.baseline["n"],
                "baseline_median": m.baseline["median"],
                "canary_n": m.canary["n"],
                "canary_median": m.canary["median"],
                "shift": m.shift,
                "ci_low": m.ci[0] if m.ci else None,
                "ci_high": m.ci[1] if m.ci else None,
                "relative_shift": m.relative_shift
                if m.relative_shift is None or np.isfinite(m.relative_shift)
                else None,
                "p_value": m.p_value,
                "reason": m.reason,
            }
        )
    if rows:
        conn.execute(canary_metric_results.insert(), rows)
    packed = []
    for metric, (baseline, canary) in samples.items():
        for side, values in (("baseline", baseline), ("canary", canary)):
            shape, data = _pack(np.asarray(values, dtype=np.float64))
            packed.append({"run_id": run_id, "metric": metric, "side": side, "shape": shape, "data": data})
    if packed:
        conn.execute(canary_samples.insert(), packed)
    return run_id


@translates_store_errors
def load_run(engine: Engine, run_id: str) -> CanaryRun | None:
    """A stored run with its config and samples, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(canary_runs).where(canary_runs.c.id == run_id)).mappings().first()
        if row is None:
            return None
        found: dict[str, dict[str, np.ndarray]] = {}
        for s in conn.execute(select(canary_samples).where(canary_samples.c.run_id == run_id)).mappings():
            found.setdefault(s["metric"], {})[s["side"]] = _unpack(s["shape"], s["data"])
    samples = {m: (sides.get("baseline", np.empty(0)), sides.get("canary", np.empty(0))) for m, sides in found.items()}
    return CanaryRun(
        row["id"],
        row["created_at"],
        row["verdict"],
        row["score"],
        row["source"],
        row["deployment_id"],
        row["window_start"],
        row["window_end"],
        row["baseline_scope"],
        row["canary_scope"],
        config_from_mapping(json.loads(row["config"])),
        json.loads(row["result"]),
        samples,
    )


@translates_store_errors
def list_runs(engine: Engine, limit: int = 50, deployment_id: str | None = None) -> pd.DataFrame:
    """The latest runs (id, created_at, verdict, score, source, deployment, window), newest first."""
    query = (
        select(
            canary_runs.c.id,
            canary_runs.c.created_at,
            canary_runs.c.verdict,
            canary_runs.c.score,
            canary_runs.c.source,
            canary_runs.c.deployment_id,
            canary_runs.c.window_start,
            canary_runs.c.window_end,
        )
        .order_by(canary_runs.c.created_at.desc())
        .limit(limit)
    )
    if deployment_id:
        query = query.where(canary_runs.c.deployment_id == deployment_id)
    with engine.connect() as conn:
        return pd.DataFrame(
            [dict(r) for r in conn.execute(query).mappings()],
            columns=["id", "created_at", "verdict", "score", "source", "deployment_id", "window_start", "window_end"],
        )
