"""The canary page's cached queries: the runs list and one stored run's report (kept apart from
`dashboard.data` so the other pages do not import the statistics stack)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from collector.canary_runs import load_run
from collector.loaders import Scope, load_canary_runs

from .common import TTL, engine


@st.cache_data(ttl=TTL, show_spinner=False)
def canary_runs(url: str, start: datetime, end: datetime, service: str | None, team: str | None) -> pd.DataFrame:
    return load_canary_runs(engine(url), start, end, Scope(service=service, team=team))


def _histogram(baseline: np.ndarray, canary: np.ndarray, bins: int = 40) -> pd.DataFrame:
    values = np.concatenate([baseline, canary])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return pd.DataFrame(columns=["side", "lo", "hi", "density"])
    lo, hi = np.percentile(values, [0.5, 99.5])
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    rows = []
    for side, sample in (("baseline", baseline), ("canary", canary)):
        sample = sample[np.isfinite(sample)]
        counts, _ = np.histogram(np.clip(sample, lo, hi), bins=edges)
        share = counts / max(sample.size, 1)
        rows.append(pd.DataFrame({"side": side, "lo": edges[:-1], "hi": edges[1:], "share": share}))
    return pd.concat(rows, ignore_index=True)


@st.cache_data(ttl=TTL, show_spinner=False)
def canary_report(url: str, run_id: str) -> dict[str, Any] | None:
    """One stored run: its result, and per metric the tolerance band and binned samples of both sides."""
    run = load_run(engine(url), run_id)
    if run is None:
        return None
    specs = {m.name: m for m in run.config.metrics}
    metrics = []
    for item in run.result.get("metrics", []):
        spec = specs.get(item["name"])
        baseline, canary = run.samples.get(item["name"], (np.empty(0), np.empty(0)))
        if item.get("test") == "proportion":  # good/total pairs: the per-interval rate is what varies
            baseline, canary = (_rates(baseline), _rates(canary))
        reference = (item.get("baseline") or {}).get("median")
        band = None if spec is None or reference is None else spec.tolerance * abs(reference)
        metrics.append({**item, "tolerance": None if spec is None else spec.tolerance, "band": band,
                        "direction": None if spec is None else spec.direction,
                        "histogram": _histogram(np.asarray(baseline, float), np.asarray(canary, float))})
    return {"id": run.id, "created_at": run.created_at, "verdict": run.verdict, "score": run.score,
            "source": run.source, "deployment_id": run.deployment_id, "window": (run.window_start, run.window_end),
            "baseline_scope": run.baseline_scope, "canary_scope": run.canary_scope,
            "reasons": run.result.get("reasons", []), "groups": run.result.get("groups"), "metrics": metrics}


def _rates(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=float).reshape(-1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs[:, 1] > 0, pairs[:, 0] / pairs[:, 1], np.nan)
