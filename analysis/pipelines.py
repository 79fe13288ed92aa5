"""Pipeline metrics over all runs (not only production): deployment success rate, failed pipeline
rate, time to deploy, time to rollback, build duration, queue time, approval latency, flaky stages,
per pipeline and per stage. Definitions in the README.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .windows import Window

_HOUR = pd.Timedelta(hours=1)
COMPLETED_DEPLOYMENT = ("success", "rolled_back")
ATTEMPTED_DEPLOYMENT = ("success", "rolled_back", "failure", "canceled")
FINISHED_RUN = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class PipelineFrames:
    """Rows for pipeline metrics (the collector's loader fetches them for a window and scope).

    - runs: id, pipeline, service, revision, status, queued_at, started_at, finished_at
    - stages: id, pipeline_run_id, name, category, status, started_at, finished_at, failed_once
    - actions: id, pipeline_run_id, stage_run_id, name, category, status, started_at, finished_at
    - deployments: id, service, environment, production, status, finished_at, rollback_of,
      first_committed_at (earliest commit it contains: commit time, else merge time), rollback_target_finished_at
    """

    runs: pd.DataFrame
    stages: pd.DataFrame
    actions: pd.DataFrame
    deployments: pd.DataFrame


def _in(series: pd.Series, window: Window) -> pd.Series:
    return (series >= window.start) & (series < window.end)


def duration_stats(hours: pd.Series) -> dict[str, Any]:
    """count, median, p90, mean and max of durations in hours (nulls dropped, negatives clipped)."""
    values = hours.dropna().clip(lower=0).to_numpy(dtype=float)
    if values.size == 0:
        return {"count": 0, "median_hours": None, "p90_hours": None, "mean_hours": None, "max_hours": None}
    median, p90 = np.percentile(values, [50, 90])
    return {"count": int(values.size), "median_hours": round(float(median), 4), "p90_hours": round(float(p90), 4),
            "mean_hours": round(float(values.mean()), 4), "max_hours": round(float(values.max()), 4)}


def _hours(frame: pd.DataFrame, end: str = "finished_at", start: str = "started_at") -> pd.Series:
    return (frame[end] - frame[start]) / _HOUR


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def flaky_stages(stages: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Stages that failed and then passed on a retry of the same revision.

    A retry within one execution shows as `failed_once` on a stage that succeeded; a retry by a new
    execution shows as a failed and a later succeeded run of the same pipeline, revision and stage.
    """
    columns = ["service", "pipeline", "stage", "revision", "failures", "retried_within_run"]
    if stages.empty:
        return pd.DataFrame(columns=columns)
    joined = stages.merge(runs[["id", "service", "pipeline", "revision"]], left_on="pipeline_run_id", right_on="id",
                          suffixes=("", "_run"))
    within = joined[joined["failed_once"].fillna(False).astype(bool) & joined["status"].eq("succeeded")]
    within = within.assign(failures=1, retried_within_run=True)[["service", "pipeline", "name", "revision",
                                                                 "failures", "retried_within_run"]]
    across = joined.dropna(subset=["revision"]).sort_values("started_at")
    groups = across.groupby(["service", "pipeline", "name", "revision"], sort=True, dropna=False)
    rows = []
    for (service, pipeline, name, revision), group in groups:
        statuses = group["status"].tolist()
        if "failed" in statuses and "succeeded" in statuses[statuses.index("failed"):]:
            rows.append((service, pipeline, name, revision, statuses.count("failed"), False))
    frame = pd.concat([within.rename(columns={"name": "stage"}),
                       pd.DataFrame(rows, columns=columns)], ignore_index=True)
    keys = ["service", "pipeline", "stage", "revision"]
    return frame.drop_duplicates(keys).sort_values(keys)


def report(frames: PipelineFrames, window: Window) -> dict[str, Any]:
    """Pipeline metrics for `window` (the JSON shape of `gatewatch pipelines`)."""
    runs, stages, actions, deps = frames.runs, frames.stages, frames.actions, frames.deployments
    out: dict[str, Any] = {"window": window.as_dict()}

    d = deps[_in(deps["finished_at"], window)]
    attempted = d[d["status"].isin(ATTEMPTED_DEPLOYMENT)]
    completed = int(attempted["status"].isin(COMPLETED_DEPLOYMENT).sum())
    out["deployments"] = {"attempted": int(len(attempted)), "successful": completed,
                          "failed": int(attempted["status"].eq("failure").sum()),
                          "canceled": int(attempted["status"].eq("canceled").sum()),
                          "success_rate": _rate(completed, len(attempted))}

    finished = runs[_in(runs["finished_at"], window) & runs["status"].isin(FINISHED_RUN)]
    failed_runs = int(finished["status"].eq("failed").sum())
    out["pipeline_runs"] = {"finished": int(len(finished)), "failed": failed_runs,
                            "failed_rate": _rate(failed_runs, len(finished))}

    prod = d[d["production"].fillna(False).astype(bool) & d["status"].isin(COMPLETED_DEPLOYMENT)]
    out["time_to_deploy"] = duration_stats(_hours(prod, "finished_at", "first_committed_at"))
    rollbacks = d[d["rollback_of"].notna() & d["status"].isin(COMPLETED_DEPLOYMENT)]
    out["time_to_rollback"] = duration_stats(_hours(rollbacks, "finished_at", "rollback_target_finished_at"))

    run_ids = set(runs.loc[_in(runs["started_at"], window) | _in(runs["finished_at"], window), "id"])
    s = stages[stages["pipeline_run_id"].isin(run_ids)]
    a = actions[actions["pipeline_run_id"].isin(run_ids)]
    builds = pd.concat([s[s["category"].eq("build")], a[a["category"].eq("build") & ~a["stage_run_id"].isin(
        s.loc[s["category"].eq("build"), "id"])]])
    out["build_duration"] = duration_stats(_hours(builds))
    first_action = a.groupby("pipeline_run_id")["started_at"].min()
    scoped = runs[runs["id"].isin(run_ids)].set_index("id")
    triggered = scoped["queued_at"].fillna(scoped["started_at"])
    out["queue_time"] = duration_stats((first_action.reindex(scoped.index) - triggered) / _HOUR)
    out["approval_latency"] = duration_stats(_hours(a[a["category"].eq("approval")]))

    flaky = flaky_stages(s, runs[runs["id"].isin(run_ids)])
    out["flaky_stages"] = flaky.to_dict("records")
    out["per_pipeline"] = _per_pipeline(runs[runs["id"].isin(run_ids)])
    out["per_stage"] = _per_stage(s, runs, flaky)
    return out


def _per_pipeline(runs: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    # Two repositories may both call their workflow "CI": a pipeline is named within its service.
    for (service, pipeline), group in runs.groupby(["service", "pipeline"], sort=True, dropna=False):
        finished = group[group["status"].isin(FINISHED_RUN)]
        failed = int(finished["status"].eq("failed").sum())
        rows.append({"service": service, "pipeline": pipeline, "runs": int(len(group)), "finished": int(len(finished)),
                     "failed": failed, "failed_rate": _rate(failed, len(finished)),
                     "success_rate": _rate(int(finished["status"].eq("succeeded").sum()), len(finished)),
                     "duration": duration_stats(_hours(finished))})
    return rows


def _per_stage(stages: pd.DataFrame, runs: pd.DataFrame, flaky: pd.DataFrame) -> list[dict[str, Any]]:
    if stages.empty:
        return []
    joined = stages.merge(runs[["id", "pipeline", "service"]], left_on="pipeline_run_id", right_on="id",
                          suffixes=("", "_run"))
    flaky_counts = (flaky.groupby(["service", "pipeline", "stage"], dropna=False).size() if not flaky.empty
                    else pd.Series(dtype=int))
    rows = []
    for (service, pipeline, name), group in joined.groupby(["service", "pipeline", "name"], sort=True, dropna=False):
        finished = group[group["status"].isin(FINISHED_RUN)]
        rows.append({"service": service, "pipeline": pipeline, "stage": name,
                     "category": group["category"].dropna().iloc[0] if group["category"].notna().any() else None,
                     "runs": int(len(group)),
                     "success_rate": _rate(int(finished["status"].eq("succeeded").sum()), len(finished)),
                     "failed_once": int(group["failed_once"].fillna(False).astype(bool).sum()),
                     "flaky": int(flaky_counts.get((service, pipeline, name), 0)),
                     "duration": duration_stats(_hours(finished))})
    return rows
