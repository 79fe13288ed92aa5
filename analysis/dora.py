"""The DORA keys (deployment frequency, change lead time, change failure rate, failed deployment
recovery time, rework rate) over a window, from DataFrames; definitions in the README.

`report(frames, window)` is the one entry point the CLI, dashboard and notebooks use. Work that does
not depend on the window (which deployments failed, when each recovered, each change's lead time)
is done once in `annotate`, so a series of buckets costs a few masks per bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from .tiers import Benchmark, get_benchmark
from .windows import Window, buckets

DEFAULT_LINK_WINDOW = timedelta(hours=24)
DEPLOYMENT_COLUMNS = ("id", "service", "team", "finished_at", "status", "rollback_of", "is_rollback", "hotfix")
CHANGE_COLUMNS = ("change_id", "committed_at", "first_deployed_at")
INCIDENT_COLUMNS = ("id", "service", "opened_at", "resolved_at", "deployment_id")
COMMIT_LINK_COLUMNS = ("deployment_id", "change_id")
_HOUR = np.timedelta64(3600, "s")
_SUMMARISED = ("finished_at", "failed", "recovery_hours", "open_failure", "rework")


@dataclass(frozen=True)
class DoraFrames:
    """What the DORA keys are computed from (the collector's loader fetches exactly these rows).

    - deployments: production deployments with status success or rolled_back in scope, covering the
      window plus context (the link window before it, later rollbacks and next deployments);
    - changes: each change contained in a deployment of the window, with the `finished_at` of the
      first deployment that contains it (`first_deployed_at`);
    - incidents: incidents of the scope that may link to those deployments;
    - commit_links: (deployment_id, change_id) for incidents whose `deployment_id` names a commit.
    """

    deployments: pd.DataFrame
    changes: pd.DataFrame
    incidents: pd.DataFrame
    commit_links: pd.DataFrame = field(default_factory=lambda: empty_frame(COMMIT_LINK_COLUMNS))


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    """An empty frame with the given columns (timestamps typed UTC where the name says so)."""
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    for col in columns:
        if col.endswith("_at"):
            frame[col] = pd.Series(dtype="datetime64[us, UTC]")
    return frame


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def _isin(values: pd.Series, candidates) -> pd.Series:
    """`values.isin(candidates)` through object arrays: pandas' isin on Arrow-backed strings is
    orders of magnitude slower on large frames."""
    as_objects = pd.Series(values.to_numpy(dtype=object), index=values.index, dtype=object)
    return as_objects.isin(np.asarray(candidates, dtype=object))


@dataclass(frozen=True)
class Annotated:
    """Per-deployment and per-change facts that do not depend on the reporting window."""

    deployments: pd.DataFrame  # + failed, rework, recovered_at, recovery_hours, open_failure
    changes: pd.DataFrame  # + lead_hours


def link_incidents(
    deps: pd.DataFrame, incidents: pd.DataFrame, commit_links: pd.DataFrame, link_window: timedelta
) -> pd.Series:
    """The deployment each incident is linked to (index of `incidents`), or NaN: the deployment it names
    (or that shipped the commit it names), else its service's last deployment within `link_window` before
    it opened. Timestamps are UTC."""
    if incidents.empty:
        return pd.Series(index=incidents.index, dtype="object")
    named = incidents["deployment_id"]
    linked = named.where(_isin(named, deps["id"]))

    by_commit = named.notna() & linked.isna()
    if by_commit.any() and not commit_links.empty:
        candidates = (
            incidents.loc[by_commit, ["opened_at", "deployment_id"]]
            .reset_index()
            .merge(
                commit_links.rename(columns={"deployment_id": "dep", "change_id": "deployment_id"}), on="deployment_id"
            )
            .merge(deps[["id", "finished_at"]].rename(columns={"id": "dep"}), on="dep")
        )
        # The deployment that shipped the commit: the latest one containing it that finished before
        # the incident opened, else the first one containing it.
        before = candidates[candidates["finished_at"] <= candidates["opened_at"]]
        latest = before.sort_values(["finished_at", "dep"]).groupby("index")["dep"].last()
        first = candidates.sort_values(["finished_at", "dep"]).groupby("index")["dep"].first()
        linked = linked.fillna(latest.combine_first(first).reindex(linked.index))

    unlinked = named.isna()
    if unlinked.any() and not deps.empty:
        left = (
            incidents.loc[unlinked, ["service", "opened_at"]]
            .reset_index()
            .dropna(subset=["opened_at", "service"])
            .sort_values("opened_at")
        )
        right = deps[["service", "finished_at", "id"]].dropna(subset=["finished_at"]).sort_values("finished_at")
        matched = pd.merge_asof(
            left,
            right,
            left_on="opened_at",
            right_on="finished_at",
            by="service",
            direction="backward",
            allow_exact_matches=False,
            tolerance=pd.Timedelta(link_window),
        )
        linked = linked.fillna(matched.set_index("index")["id"].reindex(linked.index))
    return linked


def rollback_targets(deps: pd.DataFrame) -> pd.Series:
    """The deployment each rollback rolls back (NaN for others), from `deps` sorted by service and
    finish: its `rollback_of`; a rollback that does not say (`is_rollback`, e.g. a CodePipeline
    rollback execution) rolls back the service's previous deployment."""
    same_service = deps["service"].eq(deps["service"].shift(1))
    previous = deps["id"].shift(1).where(same_service)
    return deps["rollback_of"].where(deps["rollback_of"].notna(), previous.where(deps["is_rollback"]))


def annotate(frames: DoraFrames, link_window: timedelta = DEFAULT_LINK_WINDOW) -> Annotated:
    """Which deployments failed, when each failure recovered, which are rework; each change's lead time."""
    deps = frames.deployments.loc[:, list(DEPLOYMENT_COLUMNS)].copy()
    deps["finished_at"] = _utc(deps["finished_at"])
    deps["is_rollback"] = deps["is_rollback"].fillna(False).astype(bool)
    deps["hotfix"] = deps["hotfix"].fillna(False).astype(bool)
    deps = deps.sort_values(["service", "finished_at", "id"], kind="stable").reset_index(drop=True)

    target = rollback_targets(deps)
    deps["rollback_target"] = target
    deps["rework"] = target.notna() | deps["is_rollback"] | deps["hotfix"]

    incidents = frames.incidents.loc[:, list(INCIDENT_COLUMNS)].copy()
    incidents["opened_at"] = _utc(incidents["opened_at"])
    incidents["resolved_at"] = _utc(incidents["resolved_at"])
    incidents["linked"] = link_incidents(deps, incidents, frames.commit_links, link_window)

    ids = deps["id"]
    rolled_back_by = deps.loc[target.notna()].groupby("rollback_target")["finished_at"].min()
    linked = incidents.dropna(subset=["linked"])
    grouped = linked.groupby("linked")["resolved_at"]
    with_incident = _isin(ids, linked["linked"])
    incident_open = pd.Series(grouped.count() < grouped.size()).reindex(ids).fillna(False).to_numpy(dtype=bool)
    by_incident = grouped.max().reindex(ids).array  # .array keeps the timestamps typed (to_numpy: objects)

    deps["failed"] = deps["status"].eq("rolled_back") | _isin(ids, rolled_back_by.index) | with_incident
    same_next = deps["service"].eq(deps["service"].shift(-1))
    next_deploy = deps["finished_at"].shift(-1).where(same_next)

    # Recovery: the rollback's finish; else, when incidents are linked, the last one's resolution
    # (open while any is unresolved); else the service's next deployment.
    recovered = pd.Series(rolled_back_by.reindex(ids).array, index=deps.index)
    from_incidents = pd.Series(by_incident, index=deps.index).where(~incident_open)
    recovered = recovered.where(recovered.notna(), from_incidents.where(with_incident))
    recovered = recovered.where(recovered.notna() | with_incident, next_deploy)
    recovered = _utc(recovered).where(deps["failed"])
    deps["recovered_at"] = recovered
    hours = (recovered - deps["finished_at"]) / _HOUR
    deps["recovery_hours"] = hours.clip(lower=0)
    deps["open_failure"] = deps["failed"] & recovered.isna()

    changes = frames.changes.loc[:, list(CHANGE_COLUMNS)].copy()
    changes["committed_at"] = _utc(changes["committed_at"])
    changes["first_deployed_at"] = _utc(changes["first_deployed_at"])
    changes = changes.dropna(subset=["committed_at", "first_deployed_at"])
    changes["lead_hours"] = ((changes["first_deployed_at"] - changes["committed_at"]) / _HOUR).clip(lower=0)
    return Annotated(deps, changes)


def _stats(values: np.ndarray, quantiles: tuple[int, ...]) -> dict[str, float | None]:
    if values.size == 0:
        return {**{f"p{q}_hours" if q != 50 else "median_hours": None for q in quantiles}, "mean_hours": None}
    out: dict[str, float | None] = {}
    for q, v in zip(quantiles, np.percentile(values, quantiles)):
        out["median_hours" if q == 50 else f"p{q}_hours"] = round(float(v), 4)
    out["mean_hours"] = round(float(values.mean()), 4)
    return out


def _in(series: pd.Series, window: Window) -> pd.Series:
    return (series >= window.start) & (series < window.end)


def summarise(ann: Annotated, window: Window, benchmark: Benchmark) -> dict[str, Any]:
    """The DORA figures for one window from annotated frames (the JSON shape of `gatewatch dora`)."""
    deps = ann.deployments
    in_window = _in(deps["finished_at"], window)
    d = deps.loc[in_window, list(_SUMMARISED)]  # not the text columns: taking those costs most
    n = len(d)
    days = window.calendar_days
    out: dict[str, Any] = {"window": window.as_dict()}

    if n == 0:
        reason = "no production deployments (success or rolled_back) finished in the window"
        out["deployment_frequency"] = {
            "deployments": 0,
            "per_day": None,
            "per_week": None,
            "deploy_day_share": None,
            "weekly_median": None,
            "tier": None,
            "reason": reason,
        }
    else:
        local = d["finished_at"].dt.tz_convert(window.tz).dt.tz_localize(None).dt.normalize()
        local_days = local.nunique()
        weeks = days // 7
        if weeks:
            first_day = pd.Timestamp(window.start).tz_convert(window.tz).tz_localize(None).normalize()
            index = ((local - first_day).dt.days // 7).to_numpy()
            counts = np.bincount(index[index < weeks], minlength=weeks)
            weekly_median: float | None = float(np.median(counts))
        else:
            weekly_median = None
        per_day = n / days
        out["deployment_frequency"] = {
            "deployments": n,
            "per_day": round(per_day, 4),
            "per_week": round(per_day * 7, 4),
            "deploy_day_share": round(local_days / window.calendar_days, 4),
            "weekly_median": weekly_median,
            "tier": benchmark.tier("deployment_frequency", per_day),
        }
        if weekly_median is None:
            out["deployment_frequency"]["reason"] = "window shorter than a week: no weekly median"

    lead = window_lead_hours(ann, window)
    out["lead_time"] = {"changes": int(lead.size), **_stats(lead, (50, 75, 90))}
    out["lead_time"]["tier"] = benchmark.tier("lead_time", out["lead_time"]["median_hours"])
    if lead.size == 0:
        out["lead_time"]["reason"] = "no changes with a commit time were first deployed in the window"

    failed = d["failed"]
    n_failed = int(failed.sum())
    rate = n_failed / n if n else None
    out["change_failure_rate"] = {
        "failed": n_failed,
        "deployments": n,
        "rate": None if rate is None else round(rate, 4),
        "tier": benchmark.tier("change_failure_rate", rate),
    }
    if n == 0:
        out["change_failure_rate"]["reason"] = "no deployments in the window"

    failures = d.loc[failed]
    recovered = failures["recovery_hours"].dropna().to_numpy(dtype=float)
    out["recovery_time"] = {
        "failures": n_failed,
        "recovered": int(recovered.size),
        "open": int(failures["open_failure"].sum()),
        **_stats(recovered, (50, 90)),
    }
    out["recovery_time"]["tier"] = benchmark.tier("recovery_time", out["recovery_time"]["median_hours"])
    if recovered.size == 0:
        out["recovery_time"]["reason"] = (
            "no failed deployments in the window"
            if n_failed == 0
            else "no failed deployment of the window has recovered yet"
        )

    rework = int(d["rework"].sum())
    out["rework_rate"] = {"rework": rework, "deployments": n, "rate": round(rework / n, 4) if n else None}
    if n == 0:
        out["rework_rate"]["reason"] = "no deployments in the window"
    return out


def report(
    frames: DoraFrames,
    window: Window,
    *,
    by: str | None = None,
    benchmark: Benchmark | str | None = None,
    link_window: timedelta = DEFAULT_LINK_WINDOW,
) -> dict[str, Any]:
    """The DORA report for `window` (and, with `by` = day|week|month, a series of buckets)."""
    return report_annotated(annotate(frames, link_window), window, by=by, benchmark=benchmark, link_window=link_window)


def report_annotated(
    ann: Annotated,
    window: Window,
    *,
    by: str | None = None,
    benchmark: Benchmark | str | None = None,
    link_window: timedelta = DEFAULT_LINK_WINDOW,
) -> dict[str, Any]:
    """`report` from frames already annotated with `link_window` (drill-downs reuse them)."""
    bench = benchmark if isinstance(benchmark, Benchmark) else get_benchmark(benchmark)
    out = summarise(ann, window, bench)
    out["benchmark"] = bench.name
    out["link_window_hours"] = link_window / timedelta(hours=1)
    if by:
        out["series"] = []
        for bucket in buckets(window, by):
            item = summarise(ann, bucket, bench)
            out["series"].append(item)
    return out


def window_deployments(ann: Annotated, window: Window) -> pd.DataFrame:
    """The annotated deployments of a window (for drill-downs in the dashboard and notebooks)."""
    return ann.deployments.loc[_in(ann.deployments["finished_at"], window)]


def window_lead_hours(ann: Annotated, window: Window) -> np.ndarray:
    """The lead times (hours) of the changes first deployed in a window: the lead-time figures' sample."""
    return ann.changes.loc[_in(ann.changes["first_deployed_at"], window), "lead_hours"].to_numpy(dtype=float)


__all__ = [
    "DEFAULT_LINK_WINDOW",
    "Annotated",
    "DoraFrames",
    "annotate",
    "empty_frame",
    "report",
    "report_annotated",
    "summarise",
    "window_deployments",
    "window_lead_hours",
]
