"""Pipeline metrics over all runs (not only production): deployment success and completion rates,
failed pipeline rate, time to deploy (from commit and from merge), time to rollback (from the
rolled-back deployment's finish and from detection), build duration, queue time, approval latency,
flaky stages, per pipeline and per stage. Definitions in the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .alarms import link_alarms
from .dora import empty_frame, rollback_targets
from .windows import Window

_HOUR = pd.Timedelta(hours=1)
_EPOCH = pd.Timestamp(0, tz="UTC")


def _epoch_hours(times: pd.Series) -> pd.Series:
    return (times - _EPOCH) / _HOUR


COMPLETED_DEPLOYMENT = ("success", "rolled_back")
ATTEMPTED_DEPLOYMENT = ("success", "rolled_back", "failure", "canceled")
# A superseded execution was overtaken by a newer one: it neither failed nor finished its work.
FINISHED_RUN = ("succeeded", "failed", "canceled")
DETECTION_COLUMNS = ("deployment_id", "kind", "detected_at")
ALARM_LINK_WINDOW = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class PipelineFrames:
    """Rows for pipeline metrics (the collector's loader fetches them for a window and scope).

    - runs: id, pipeline, service, revision, status, queued_at, started_at, finished_at
    - stages: id, pipeline_run_id, name, category, status, started_at, finished_at, failed_once
    - actions: id, pipeline_run_id, stage_run_id, name, category, status, started_at, finished_at, and
      optionally build_queued_at, build_started_at (the CodeBuild build a build action ran, if known) and
      declared_category (the category its action type declares, as CodePipeline's do; null for a guess
      from its name), which classifies its stage (`stage_categories`)
    - deployments: id, service, environment, production, status, finished_at, rollback_of, is_rollback,
      first_committed_at (earliest commit it contains: commit time, else merge time), first_merged_at
      (earliest merge of its changes); the window's, plus the context that resolves rollbacks: each
      rollback's explicit target, each service's last completed production deployment before the
      window, and the rollbacks after it of the window's deployments
    - detections: deployment_id, kind (gate: a rollback decision, canary: a failed run, incident: one
      naming it), detected_at, for those deployments
    - alarms: alarm episodes (id, service, started_at) since the earliest of those deployments, if kept
    """

    runs: pd.DataFrame
    stages: pd.DataFrame
    actions: pd.DataFrame
    deployments: pd.DataFrame
    detections: pd.DataFrame = field(default_factory=lambda: empty_frame(DETECTION_COLUMNS))
    alarms: pd.DataFrame | None = None


def _in(series: pd.Series, window: Window) -> pd.Series:
    return (series >= window.start) & (series < window.end)


def duration_stats(hours: pd.Series) -> dict[str, Any]:
    """count, median, p90, mean and max of durations in hours (nulls dropped, negatives clipped)."""
    values = hours.dropna().clip(lower=0).to_numpy(dtype=float)
    if values.size == 0:
        return {"count": 0, "median_hours": None, "p90_hours": None, "mean_hours": None, "max_hours": None}
    median, p90 = np.percentile(values, [50, 90])
    return {
        "count": int(values.size),
        "median_hours": round(float(median), 4),
        "p90_hours": round(float(p90), 4),
        "mean_hours": round(float(values.mean()), 4),
        "max_hours": round(float(values.max()), 4),
    }


def _hours(frame: pd.DataFrame, end: str = "finished_at", start: str = "started_at") -> pd.Series:
    return (frame[end] - frame[start]) / _HOUR


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def build_queue_hours(actions: pd.DataFrame) -> pd.Series:
    """Per run: hours its build actions' CodeBuild builds waited in CodeBuild's queue (`build_queued_at`
    to `build_started_at`; waits that overlap, as parallel builds', counted once)."""
    if "build_queued_at" not in actions or "build_started_at" not in actions:
        return pd.Series(dtype=float)
    waits = actions.dropna(subset=["build_queued_at", "build_started_at"])
    if waits.empty:
        return pd.Series(dtype=float)
    waits = waits.sort_values(["pipeline_run_id", "build_queued_at"])
    run = waits["pipeline_run_id"]
    begins, ends = (_epoch_hours(waits["build_queued_at"]), _epoch_hours(waits["build_started_at"]))
    earlier_end = ends.groupby(run).cummax().groupby(run).shift()  # the latest end of the run's earlier waits
    fresh = (ends - np.maximum(begins, earlier_end.fillna(-np.inf))).clip(lower=0)
    return fresh.groupby(run).sum()


def queue_hours(runs: pd.DataFrame, actions: pd.DataFrame) -> pd.Series:
    """Per run (index: run id): hours waiting before work ran: from the trigger (queued time, else start)
    to the first action's start (a run without actions, such as a CodeBuild build: its queued time to its
    start), plus its builds' waits in CodeBuild's queue (`build_queue_hours`): CodePipeline starts a
    build action at once, so the wait for a build host shows only in CodeBuild."""
    indexed = runs.set_index("id")
    first_work = actions.groupby("pipeline_run_id")["started_at"].min().reindex(indexed.index)
    first_work = first_work.fillna(indexed["started_at"].where(indexed["queued_at"].notna()))
    own = ((first_work - indexed["queued_at"].fillna(indexed["started_at"])) / _HOUR).clip(lower=0)
    return own + build_queue_hours(actions).reindex(indexed.index, fill_value=0.0)


def resolve_rollbacks(deployments: pd.DataFrame) -> pd.Series:
    """What each deployment rolls back (by index, NaN for none): its `rollback_of`, else for a
    completed production rollback that does not say (`is_rollback`), as the DORA keys resolve it."""
    done = deployments[
        deployments["production"].fillna(False).astype(bool) & deployments["status"].isin(COMPLETED_DEPLOYMENT)
    ]
    done = done.assign(is_rollback=done["is_rollback"].fillna(False).astype(bool))
    resolved = rollback_targets(done.sort_values(["service", "finished_at", "id"], kind="stable"))
    return deployments["rollback_of"].combine_first(resolved.reindex(deployments.index))


def detected_at(rollbacks: pd.DataFrame, detections: pd.DataFrame) -> pd.Series:
    """When each rollback's need was first detected (by index, NaT for no evidence): the earliest
    evidence about the deployment it rolls back (`rollback_target`) up to the rollback's finish."""
    evidence = (
        rollbacks[["rollback_target", "finished_at"]]
        .reset_index()
        .merge(detections[["deployment_id", "detected_at"]], left_on="rollback_target", right_on="deployment_id")
    )
    evidence = evidence[evidence["detected_at"] <= evidence["finished_at"]]
    first = evidence.groupby("index")["detected_at"].min()
    return pd.to_datetime(first.reindex(rollbacks.index), utc=True)


def _detections(frames: PipelineFrames) -> pd.DataFrame:
    """The frames' detections plus each linked alarm episode's start (kind alarm)."""
    alarms = frames.alarms
    if alarms is None or alarms.empty:
        return frames.detections
    linked = link_alarms(frames.deployments, alarms, ALARM_LINK_WINDOW).assign(kind="alarm")
    linked = linked.dropna(subset=["deployment_id"]).rename(columns={"started_at": "detected_at"})
    return pd.concat([frames.detections, linked[list(DETECTION_COLUMNS)]], ignore_index=True)


def flaky_stages(stages: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Stages that failed and then passed on a retry of the same revision.

    A retry within one execution shows as `failed_once` on a stage that succeeded; a retry by a new
    execution shows as a failed and a later succeeded run of the same pipeline, revision and stage.
    """
    columns = ["service", "pipeline", "stage", "revision", "failures", "retried_within_run"]
    if stages.empty:
        return pd.DataFrame(columns=columns)
    joined = stages.merge(
        runs[["id", "service", "pipeline", "revision"]], left_on="pipeline_run_id", right_on="id", suffixes=("", "_run")
    )
    within = joined[joined["failed_once"].fillna(False).astype(bool) & joined["status"].eq("succeeded")]
    within = within.assign(failures=1, retried_within_run=True)[
        ["service", "pipeline", "name", "revision", "failures", "retried_within_run"]
    ]
    across = joined.dropna(subset=["revision"]).sort_values("started_at")
    groups = across.groupby(["service", "pipeline", "name", "revision"], sort=True, dropna=False)
    rows = []
    for (service, pipeline, name, revision), group in groups:
        statuses = group["status"].tolist()
        if "failed" in statuses and "succeeded" in statuses[statuses.index("failed") :]:
            rows.append((service, pipeline, name, revision, statuses.count("failed"), False))
    frame = pd.concat(
        [within.rename(columns={"name": "stage"}), pd.DataFrame(rows, columns=columns)], ignore_index=True
    )
    keys = ["service", "pipeline", "stage", "revision"]
    return frame.drop_duplicates(keys).sort_values(keys)


# A stage's category from its actions' declared ones, the first that any of them has: a stage that deploys is
# a deploy stage even when it also waits for an approval or runs a test.
STAGE_CATEGORY_ORDER = ("deploy", "approval", "test", "build", "source")


def stage_categories(stages: pd.DataFrame, actions: pd.DataFrame) -> pd.Series:
    """Each stage's category (index: the stages'): the first of STAGE_CATEGORY_ORDER among its actions'
    `declared_category`, when any is known, else its own `category` (a guess from its name)."""
    if "declared_category" not in actions or stages.empty:
        return stages["category"]
    rank = actions["declared_category"].map({c: i for i, c in enumerate(STAGE_CATEGORY_ORDER)}).dropna()
    first = rank.groupby(actions.loc[rank.index, "stage_run_id"]).min()
    declared = stages["id"].map(first).map(dict(enumerate(STAGE_CATEGORY_ORDER)))
    return declared.fillna(stages["category"])


def classified(stages: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """The stages with their `category` from `stage_categories`."""
    return stages.assign(category=stage_categories(stages, actions))


def report(frames: PipelineFrames, window: Window) -> dict[str, Any]:
    """Pipeline metrics for `window` (the JSON shape of `gatewatch pipelines`)."""
    runs, actions, deps = frames.runs, frames.actions, frames.deployments
    stages = classified(frames.stages, actions)
    out: dict[str, Any] = {"window": window.as_dict()}

    deps = deps.assign(rollback_target=resolve_rollbacks(deps))
    detections = _detections(frames)
    by_rollback = deps[deps["rollback_target"].notna() & deps["status"].isin(COMPLETED_DEPLOYMENT)]
    gate_rollbacks = detections.loc[detections["kind"].eq("gate"), "deployment_id"]
    rolled_back = deps["status"].eq("rolled_back") | deps["id"].isin(by_rollback["rollback_target"])
    deps = deps.assign(rolled_back=rolled_back | deps["id"].isin(gate_rollbacks))

    d = deps[_in(deps["finished_at"], window)]
    attempted = d[d["status"].isin(ATTEMPTED_DEPLOYMENT)]
    completed = int(attempted["status"].isin(COMPLETED_DEPLOYMENT).sum())
    successful = int((attempted["status"].eq("success") & ~attempted["rolled_back"]).sum())
    out["deployments"] = {
        "attempted": len(attempted),
        "successful": successful,
        "completed": completed,
        "rolled_back": int(attempted["rolled_back"].sum()),
        "failed": int(attempted["status"].eq("failure").sum()),
        "canceled": int(attempted["status"].eq("canceled").sum()),
        "success_rate": _rate(successful, len(attempted)),
        "completion_rate": _rate(completed, len(attempted)),
    }

    ended = runs[_in(runs["finished_at"], window)]
    finished = ended[ended["status"].isin(FINISHED_RUN)]
    failed_runs = int(finished["status"].eq("failed").sum())
    out["pipeline_runs"] = {
        "finished": len(finished),
        "failed": failed_runs,
        "failed_rate": _rate(failed_runs, len(finished)),
        "superseded": int(ended["status"].eq("superseded").sum()),
    }

    prod = d[d["production"].fillna(False).astype(bool) & d["status"].isin(COMPLETED_DEPLOYMENT)]
    out["time_to_deploy"] = duration_stats(_hours(prod, "finished_at", "first_committed_at"))
    out["merge_to_production"] = duration_stats(_hours(prod, "finished_at", "first_merged_at"))
    rollbacks = by_rollback[_in(by_rollback["finished_at"], window)]
    target_finished = deps.drop_duplicates("id").set_index("id")["finished_at"]
    rollbacks = rollbacks.assign(
        target_finished_at=target_finished.reindex(rollbacks["rollback_target"]).array,
        detected_at=detected_at(rollbacks, detections),
    )
    out["time_to_rollback"] = duration_stats(_hours(rollbacks, "finished_at", "target_finished_at"))
    detected = duration_stats(_hours(rollbacks, "finished_at", "detected_at"))
    out["detection_to_rollback"] = detected | {
        "rollbacks": len(rollbacks),
        "without_detection": len(rollbacks) - detected["count"],
    }

    run_ids = set(runs.loc[_in(runs["started_at"], window) | _in(runs["finished_at"], window), "id"])
    s = stages[stages["pipeline_run_id"].isin(run_ids)]
    a = actions[actions["pipeline_run_id"].isin(run_ids)]
    builds = pd.concat(
        [
            s[s["category"].eq("build")],
            a[a["category"].eq("build") & ~a["stage_run_id"].isin(s.loc[s["category"].eq("build"), "id"])],
        ]
    )
    out["build_duration"] = duration_stats(_hours(builds))
    out["queue_time"] = duration_stats(queue_hours(runs[runs["id"].isin(run_ids)], a))
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
        rows.append(
            {
                "service": service,
                "pipeline": pipeline,
                "runs": len(group),
                "finished": len(finished),
                "superseded": int(group["status"].eq("superseded").sum()),
                "failed": failed,
                "failed_rate": _rate(failed, len(finished)),
                "success_rate": _rate(int(finished["status"].eq("succeeded").sum()), len(finished)),
                "duration": duration_stats(_hours(finished)),
            }
        )
    return rows


def _per_stage(stages: pd.DataFrame, runs: pd.DataFrame, flaky: pd.DataFrame) -> list[dict[str, Any]]:
    if stages.empty:
        return []
    joined = stages.merge(
        runs[["id", "pipeline", "service"]], left_on="pipeline_run_id", right_on="id", suffixes=("", "_run")
    )
    flaky_counts = (
        flaky.groupby(["service", "pipeline", "stage"], dropna=False).size()
        if not flaky.empty
        else pd.Series(dtype=int)
    )
    rows = []
    for (service, pipeline, name), group in joined.groupby(["service", "pipeline", "name"], sort=True, dropna=False):
        finished = group[group["status"].isin(FINISHED_RUN)]
        rows.append(
            {
                "service": service,
                "pipeline": pipeline,
                "stage": name,
                "category": group["category"].dropna().iloc[0] if group["category"].notna().any() else None,
                "runs": len(group),
                "success_rate": _rate(int(finished["status"].eq("succeeded").sum()), len(finished)),
                "failed_once": int(group["failed_once"].fillna(False).astype(bool).sum()),
                "flaky": int(flaky_counts.get((service, pipeline, name), 0)),
                "duration": duration_stats(_hours(finished)),
            }
        )
    return rows


# --- drill-downs: per execution, per pipeline, and what is running now -------------------------------

CATEGORIES = ("queue", "build", "test", "approval", "deploy")


def finished_runs(runs: pd.DataFrame, window: Window) -> pd.DataFrame:
    """The runs that started and finished, finishing in the window, with their `hours`."""
    done = runs[runs["finished_at"].notna() & runs["started_at"].notna() & _in(runs["finished_at"], window)].copy()
    done["hours"] = _hours(done)
    return done


def category_hours(stages: pd.DataFrame, actions: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per run (index: run id): hours in queue (trigger, or queued time, to the first action's start) and
    in build, test, approval and deploy stages (by `stage_categories`), with its service and pipeline."""
    s = classified(stages, actions).assign(hours=_hours(stages).clip(lower=0))
    per_run = s.pivot_table(index="pipeline_run_id", columns="category", values="hours", aggfunc="sum")
    indexed = runs.set_index("id")
    out = pd.DataFrame(index=indexed.index)
    out["queue"] = queue_hours(runs, actions)
    for category in CATEGORIES[1:]:
        out[category] = per_run[category].reindex(indexed.index) if category in per_run else np.nan
    return out.join(indexed[["service", "pipeline"]])


def stage_breakdown(frames: PipelineFrames, window: Window) -> pd.DataFrame:
    """Per pipeline of a service and category (queue, build, test, approval, deploy): the median hours per
    execution finished in the window (columns service, pipeline, category, median_hours). A pipeline is
    named within its service: two services' `deploy` pipelines are two rows of each category."""
    done = finished_runs(frames.runs, window)
    if done.empty:
        return pd.DataFrame(columns=["service", "pipeline", "category", "median_hours"])
    per_run = category_hours(frames.stages, frames.actions, done)
    return (
        per_run.groupby(["service", "pipeline"], dropna=False)[list(CATEGORIES)]
        .median()
        .reset_index()
        .melt(id_vars=["service", "pipeline"], var_name="category", value_name="median_hours")
        .dropna(subset=["median_hours"])
    )


def approval_latency_by_pipeline(frames: PipelineFrames, window: Window) -> pd.DataFrame:
    """Per pipeline: approval actions' start-to-decision hours (duration_stats) of executions finished in
    the window (columns service, pipeline, count, median_hours, p90_hours, mean_hours, max_hours)."""
    done = finished_runs(frames.runs, window)
    a = frames.actions
    approvals = a[a["category"].eq("approval") & a["pipeline_run_id"].isin(done["id"])]
    approvals = approvals.merge(frames.runs[["id", "service", "pipeline"]], left_on="pipeline_run_id", right_on="id")
    rows = [
        {"service": key[0], "pipeline": key[1], **duration_stats(_hours(group))}
        for key, group in approvals.groupby(["service", "pipeline"])
    ]
    return pd.DataFrame(
        rows, columns=["service", "pipeline", "count", "median_hours", "p90_hours", "mean_hours", "max_hours"]
    )


def slowest_runs(runs: pd.DataFrame, window: Window, n: int = 25) -> pd.DataFrame:
    """The `n` longest executions finished in the window, longest first."""
    return (
        finished_runs(runs, window)
        .nlargest(n, "hours")[["id", "service", "pipeline", "status", "revision", "started_at", "finished_at", "hours"]]
        .reset_index(drop=True)
    )


def running_runs(active: pd.DataFrame, finished: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Active executions with `running_hours` so far, their pipeline's p90 of `finished` executions'
    hours (`p90_hours`), and `stuck` when running longer than that; longest running first."""
    p90 = pd.Series(dtype=float)
    if not finished.empty:
        p90 = _hours(finished).groupby([finished["service"], finished["pipeline"]]).quantile(0.9)
    out = active.copy()
    out["running_hours"] = (pd.Timestamp(now) - out["started_at"].fillna(out["queued_at"])) / _HOUR
    out["p90_hours"] = [p90.get(key, np.nan) for key in zip(out["service"], out["pipeline"])]
    out["stuck"] = out["running_hours"] > out["p90_hours"]
    return out.sort_values("running_hours", ascending=False)


def failing_pipelines(failed: pd.DataFrame, finished: pd.DataFrame) -> pd.DataFrame:
    """The failed executions that are their pipeline's latest finished one (the pipeline is failing now)."""
    if failed.empty or finished.empty:
        return failed
    latest = finished.groupby(["service", "pipeline"])["finished_at"].max()
    is_latest = [
        latest.get(key) == at for key, at in zip(zip(failed["service"], failed["pipeline"]), failed["finished_at"])
    ]
    return failed[is_latest]
