"""Canary analysis: read a canary's samples, judge them and store the run (one path for the CLI, the
gates and the demo), read stored runs back, and a stored run's report for the dashboard."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analysis.canary import CanaryConfig, config_from_mapping, judge, tolerance_band
from collector.canary_runs import CanaryOutcome, CanaryRun, list_runs, load_run, save_run
from collector.config import Config, read_yaml
from collector.listings import load_canary_runs
from collector.loaders import Scope
from collector.telemetry import SampleSource, read_samples
from gatewatch.errors import CanaryConfigError

__all__ = [
    "canary_report",
    "canary_runs_between",
    "get_canary_run",
    "list_canary_runs",
    "load_canary_config",
    "run_canary",
]


def load_canary_config(path: str | Path) -> CanaryConfig:
    """A canary config from a YAML file; CanaryConfigError names the file and the field."""
    raw = read_yaml(path, "canary config")
    try:
        return config_from_mapping(raw)
    except CanaryConfigError as exc:
        raise CanaryConfigError(f"{path}: {exc}") from None


def run_canary(
    engine: Engine | None,
    config: Config,
    canary: CanaryConfig,
    source: SampleSource,
    *,
    window: tuple[datetime, datetime] | None = None,
    deployment_id: str | None = None,
    store: bool = True,
) -> CanaryOutcome:
    """Read the samples (`source` over `window`), judge them and, with `store`, record the run with
    what it judged (`engine` may be None when not storing). A source that cannot be read gives
    `nodata` for its metrics, never a pass."""
    telemetry = read_samples(canary, source, window, config.prometheus)
    verdict = judge(canary, telemetry.samples, telemetry.errors)
    run_id = None
    if store:
        if engine is None:
            raise ValueError("run_canary: storing a run needs the store's engine")
        scopes = (getattr(source, "baseline", None), getattr(source, "canary", None))
        run_id = save_run(
            engine,
            canary,
            verdict,
            telemetry.samples,
            source.kind,
            deployment_id=deployment_id,
            window=window,
            baseline_scope=scopes[0],
            canary_scope=scopes[1],
        )
    return CanaryOutcome(verdict, run_id, telemetry)


def get_canary_run(engine: Engine, run_id: str) -> CanaryRun | None:
    """A stored run with its config, result and samples (to audit or re-judge it), or None."""
    return load_run(engine, run_id)


def list_canary_runs(engine: Engine, limit: int = 50, deployment_id: str | None = None) -> pd.DataFrame:
    """The latest runs, newest first (id, created_at, verdict, score, source, deployment_id, window)."""
    return list_runs(engine, limit, deployment_id)


def canary_runs_between(
    engine: Engine, start: datetime, end: datetime, scope: Scope | None = None, limit: int = 200
) -> pd.DataFrame:
    """Runs created in [start, end), newest first, with their deployment's service (of the scope's
    service or team when given)."""
    return load_canary_runs(engine, start, end, scope or Scope(), limit)


def canary_report(engine: Engine, run_id: str, bins: int = 40) -> dict[str, Any] | None:
    """One stored run as the Canary page draws it: its result, and per metric the tolerance band the
    judge used and both sides' samples binned on one scale; None when there is no such run."""
    run = load_run(engine, run_id)
    if run is None:
        return None
    specs = {m.name: m for m in run.config.metrics}
    metrics = []
    for item in run.result.get("metrics", []):
        spec = specs.get(item["name"])
        baseline, canary = run.samples.get(item["name"], (np.empty(0), np.empty(0)))
        if item.get("test") == "proportion":  # good/total pairs: the per-interval rate is what varies
            baseline, canary = _rates(baseline), _rates(canary)
        reference = (item.get("baseline") or {}).get("median")
        band = None if spec is None or reference is None else tolerance_band(spec, reference)
        metrics.append(
            {
                **item,
                "tolerance": None if spec is None else spec.tolerance,
                "band": band,
                "direction": None if spec is None else spec.direction,
                "histogram": _histogram(np.asarray(baseline, float), np.asarray(canary, float), bins),
            }
        )
    return {
        "id": run.id,
        "created_at": run.created_at,
        "verdict": run.verdict,
        "score": run.score,
        "source": run.source,
        "deployment_id": run.deployment_id,
        "window": (run.window_start, run.window_end),
        "baseline_scope": run.baseline_scope,
        "canary_scope": run.canary_scope,
        "reasons": run.result.get("reasons", []),
        "groups": run.result.get("groups"),
        "metrics": metrics,
    }


def _histogram(baseline: np.ndarray, canary: np.ndarray, bins: int) -> pd.DataFrame:
    """Both sides' share of samples per bin, on one scale (0.5th to 99.5th percentile of both)."""
    values = np.concatenate([baseline, canary])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return pd.DataFrame(columns=["side", "lo", "hi", "share"])
    lo, hi = np.percentile(values, [0.5, 99.5])
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    rows = []
    for side, sample in (("baseline", baseline), ("canary", canary)):
        sample = sample[np.isfinite(sample)]
        counts, _ = np.histogram(np.clip(sample, lo, hi), bins=edges)
        rows.append(
            pd.DataFrame({"side": side, "lo": edges[:-1], "hi": edges[1:], "share": counts / max(sample.size, 1)})
        )
    return pd.concat(rows, ignore_index=True)


def _rates(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=float).reshape(-1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs[:, 1] > 0, pairs[:, 0] / pairs[:, 1], np.nan)
