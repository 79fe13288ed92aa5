"""The On-call lists, pure: each item with `since` (when its state began), its `age` for people
("failing for 2h10m", with `analysis.slo.age_label`), newest first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .dora import link_incidents
from .slo import age_label

RUN_COLUMNS = ("service", "pipeline", "status", "stage", "stage_status", "age", "since", "revision", "url", "id")
BURN_COLUMNS = (
    "service",
    "slo",
    "severity",
    "age",
    "stale",
    "as_of",
    "long_window",
    "short_window",
    "long_burn_rate",
    "short_burn_rate",
    "threshold",
)
STALE_COLUMNS = ("service", "slo", "age", "newest", "note")
_RUNNING = {"queued": "queued for {age}", "in_progress": "running for {age}"}


def with_age(frame: pd.DataFrame, since: str, now: datetime, template: str | pd.Series) -> pd.DataFrame:
    """`frame` with `since` (its column named by `since`, as UTC) and `age`: the `template` ("failing for
    {age}"; one for all rows or one per row) filled with `age_label(now - since)`; newest first."""
    out = frame.copy()
    out["since"] = pd.to_datetime(out[since], utc=True)
    templates = pd.Series(template, index=out.index) if isinstance(template, str) else template
    out["age"] = [
        "unknown" if pd.isna(at) else str(t).format(age=age_label(now - at)) for at, t in zip(out["since"], templates)
    ]
    return out.sort_values("since", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def current_stage(runs: pd.DataFrame, stages: pd.DataFrame) -> pd.DataFrame:
    """`runs` with `stage` and `stage_status`: the stage running now (else the failed one, else the one
    started last) of each run."""
    rank = stages["status"].map({"in_progress": 0, "queued": 1, "failed": 2}).fillna(3)
    ordered = stages.assign(rank=rank).sort_values(["rank", "started_at"], ascending=[True, False], kind="stable")
    first = ordered.drop_duplicates("pipeline_run_id").set_index("pipeline_run_id")
    return runs.assign(
        stage=runs["id"].map(first["name"]).astype(object), stage_status=runs["id"].map(first["status"]).astype(object)
    )


def failing_since(failing: pd.DataFrame, finished: pd.DataFrame) -> pd.Series:
    """When each failing pipeline (of `failing`, its latest failed executions) started failing: the
    finish of its first failed execution after its last succeeded one in `finished` (service, pipeline,
    status, finished_at)."""
    keys = ["service", "pipeline"]
    ok = finished[finished["status"].eq("succeeded")].groupby(keys, dropna=False)["finished_at"].max()
    failed = finished[finished["status"].eq("failed")]
    last_ok = pd.Series([ok.get(key) for key in zip(failed["service"], failed["pipeline"])], index=failed.index)
    after = failed[
        last_ok.isna() | (pd.to_datetime(failed["finished_at"], utc=True) > pd.to_datetime(last_ok, utc=True))
    ]
    first = after.groupby(keys, dropna=False)["finished_at"].min()
    since = [
        first.get(key, at) for key, at in zip(zip(failing["service"], failing["pipeline"]), failing["finished_at"])
    ]
    return pd.Series(since, index=failing.index, dtype=failing["finished_at"].dtype)


def pipeline_runs(
    active: pd.DataFrame, failing: pd.DataFrame, finished: pd.DataFrame, stages: pd.DataFrame, now: datetime
) -> pd.DataFrame:
    """Failing pipelines' latest executions ("failing for" since the pipeline started failing, see
    `failing_since`) and running ones ("running for" since they started, or queued), with the current
    stage, newest first."""
    running = active.assign(since=active["started_at"].fillna(active["queued_at"]))
    running_words = active["status"].map(_RUNNING).fillna("running for {age}")
    failed = failing.assign(since=failing_since(failing, finished))
    parts = [
        with_age(running, "since", now, running_words),
        with_age(failed, "since", now, "failing for {age}"),
    ]
    runs = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
    runs = current_stage(runs, stages)
    extra = [c for c in ("stuck", "running_hours", "p90_hours") if c in runs]
    out = runs.reindex(columns=[*RUN_COLUMNS, *extra])
    return out.sort_values("since", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def failed_canaries(runs: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Canary runs whose verdict is fail or marginal, newest first, aged from their judgement."""
    return with_age(runs[runs["verdict"].isin(["fail", "marginal"])], "created_at", now, "{age} ago")


def holds_and_rollbacks(decisions: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Gate decisions to hold or roll back, newest first, with their reasons as one line."""
    held = decisions[decisions["decision"].isin(["hold", "rollback"])]
    held = held.assign(reason=[" ; ".join(map(str, r or [])) for r in held["reasons"]])
    return with_age(held, "created_at", now, "{age} ago")


def rollbacks_in_progress(active_deployments: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Deployments in progress that roll back an earlier one."""
    d = active_deployments
    rolling = d[d["is_rollback"].fillna(False).astype(bool) | d["rollback_of"].notna()]
    return with_age(rolling, "started_at", now, "rolling back for {age}")


def open_incidents(
    incidents: pd.DataFrame,
    deployments: pd.DataFrame,
    commit_links: pd.DataFrame,
    link_window: timedelta,
    now: datetime,
) -> pd.DataFrame:
    """Open incidents ("open for" since they opened) with the deployment the DORA report links them to
    (`analysis.dora.link_incidents`) and its status and finish."""
    out = incidents.drop(columns=["deployment_status", "deployment_finished_at"], errors="ignore")
    deps = deployments.assign(finished_at=pd.to_datetime(deployments["finished_at"], utc=True))
    linked = link_incidents(
        deps, out.assign(opened_at=pd.to_datetime(out["opened_at"], utc=True)), commit_links, link_window
    )
    by_id = deps.drop_duplicates("id").set_index("id")
    keys = linked.astype(object).where(linked.notna(), None)
    out = out.assign(
        linked_deployment=keys.to_numpy(),
        deployment_status=by_id["status"].reindex(keys).to_numpy(dtype=object),
        deployment_finished_at=by_id["finished_at"].reindex(keys).array,
    )
    return with_age(out, "opened_at", now, "open for {age}")


def burn_alerts(slos: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, pd.DataFrame]:
    """From `slo_overview`'s SLOs (evaluated at their newest data when it stopped): `firing`, each firing
    burn-rate alert with its data's age (`stale` when the SLI's data stopped), and `stale`, each SLO whose
    data stopped, with its newest point's age."""
    firing, stale = [], []
    for slo in slos:
        if slo.get("error"):
            continue
        status = slo["status"]
        is_stale = bool(slo.get("note") or status.get("stale"))
        newest = pd.Timestamp(status["newest"]) if status.get("newest") else None
        as_of = pd.Timestamp(status["at"])
        if is_stale:
            note = slo.get("note") or status.get("stale")
            stale.append({"service": slo["service"], "slo": slo["name"], "newest": newest, "note": note})
        for alert in slo.get("firing", []):
            firing.append({"service": slo["service"], "slo": slo["name"], "as_of": as_of, "stale": is_stale, **alert})
    fire = pd.DataFrame(firing, columns=[c for c in BURN_COLUMNS if c not in ("age",)])
    ages = fire["stale"].map({True: "stale: data {age} old", False: "data {age} old"})
    stale_frame = pd.DataFrame(stale, columns=[c for c in STALE_COLUMNS if c != "age"])
    return {
        "firing": with_age(fire, "as_of", now, ages)[list(BURN_COLUMNS)],
        "stale": with_age(stale_frame, "newest", now, "stale: newest point {age} old")[list(STALE_COLUMNS)],
    }
