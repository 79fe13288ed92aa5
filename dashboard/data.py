"""The dashboard's cached queries: each loads through `collector.loaders` (filtered in SQL), computes
through `analysis`, and returns only what a page draws, so a warm render unpickles little."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from analysis import dora
from analysis import pipelines as pipeline_analysis
from analysis.pipelines import duration_stats
from analysis.tiers import get_benchmark
from analysis.windows import Window, buckets
from collector.loaders import (Scope, load_dora_frames, load_gate_decisions, load_open_work,
                               load_pipeline_frames, load_run_detail)
from collector.timeutil import parse_duration

from . import workers
from .common import PAST_TTL, TTL, config, engine

LEAD_BINS = [0, 0.25, 1, 4, 8, 24, 48, 168, 336, 720, np.inf]
LEAD_LABELS = ["< 15 min", "15 min-1 h", "1-4 h", "4-8 h", "8-24 h", "1-2 d", "2-7 d", "1-2 wk", "2-4 wk", "> 4 wk"]
HEATMAP_SERVICES = 40
CATEGORIES = ("queue", "build", "test", "approval", "deploy")


def _benchmark_and_link():
    cfg = config()
    return get_benchmark(cfg.dora_benchmark, cfg.benchmarks), parse_duration(cfg.dora_link_window)


@st.cache_data(ttl=PAST_TTL, show_spinner=False)
def previous_report(url: str, start: datetime, end: datetime, tz: str, scope: Scope) -> dict[str, Any]:
    """The plain `gatewatch dora` report of a past period (the executive page's comparison), computed
    in the worker process. Its window lies in the past, so it is kept longer than the current
    window's figures."""
    bench, link = _benchmark_and_link()
    return workers.dora_report_elsewhere(url, start, end, tz, scope, bench, link)


class _Beside(threading.Thread):
    """A call run in a thread of this page's script run (so Streamlit's cache works in it); `result()`
    joins it and returns its value or raises its error."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self._fn, self._args, self._value, self._error = fn, args, None, None
        add_script_run_ctx(self, get_script_run_ctx())

    def run(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # re-raised in the page's thread
            self._error = exc

    def result(self):
        self.join()
        if self._error is not None:
            raise self._error
        return self._value


def dora_reports(url: str, window: Window, previous: Window, scope: Scope) -> tuple[dict, dict, dora.Annotated]:
    """`gatewatch dora --by week` for the window and the plain report for the previous period (the
    same loader and analysis calls as the CLI), plus the window's annotated frames for drill-downs.
    Unless it is cached, the previous period is computed in the worker process meanwhile."""
    bench, link = _benchmark_and_link()
    before = _Beside(previous_report, url, previous.start, previous.end, previous.tz, scope)
    before.start()
    frames = load_dora_frames(engine(url), window.start, window.end, scope, link)
    # `dora.report` annotates and then summarises; annotating once here serves both the report and
    # the drill-down charts (tests check the figures equal `dora.report`'s).
    ann = dora.annotate(frames, link)
    report = dora.summarise(ann, window, bench) | {"benchmark": bench.name,
                                                    "link_window_hours": link / timedelta(hours=1)}
    report["series"] = [dora.summarise(ann, bucket, bench) for bucket in buckets(window, "week")]
    return report, before.result(), ann


def _local_day(series: pd.Series, tz: str) -> pd.Series:
    return series.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


@st.cache_data(ttl=TTL, show_spinner="Computing the DORA keys ...")
def executive(url: str, start: datetime, end: datetime, tz: str, service: str | None, team: str | None,
              environment: str | None) -> dict[str, Any]:
    """Everything the executive page draws: both reports, daily cadence, CFR by service and week,
    the lead-time histogram."""
    window = Window(start, end, tz)
    previous = Window(start - (end - start), start, tz)
    report, before, ann = dora_reports(url, window, previous, Scope(service, team, environment))
    deps = dora.window_deployments(ann, window)
    day = _local_day(deps["finished_at"], tz)
    daily = (pd.DataFrame({"day": day, "failed": deps["failed"].to_numpy(dtype=bool)})
             .groupby(["day", "failed"]).size().rename("deployments").reset_index())
    daily["outcome"] = np.where(daily["failed"], "failed", "ok")
    week = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    per_week = (pd.DataFrame({"service": deps["service"].to_numpy(), "week": week.to_numpy(),
                              "failed": deps["failed"].to_numpy(dtype=int)})
                .groupby(["service", "week"])["failed"].agg(["size", "sum"]).reset_index()
                .rename(columns={"size": "deployments", "sum": "failed"}))
    busiest = per_week.groupby("service")["deployments"].sum().nlargest(HEATMAP_SERVICES).index
    services_total = int(per_week["service"].nunique())
    heat = per_week[per_week["service"].isin(busiest)].copy()
    heat["rate"] = heat["failed"] / heat["deployments"]
    heat["week"] = pd.to_datetime(heat["week"]).dt.strftime("%Y-%m-%d")
    changes = ann.changes
    lead = changes.loc[(changes["first_deployed_at"] >= window.start) & (changes["first_deployed_at"] < window.end),
                       "lead_hours"].to_numpy(dtype=float)
    counts, _ = np.histogram(lead, bins=LEAD_BINS)
    histogram = pd.DataFrame({"lead_time": LEAD_LABELS, "changes": counts, "order": range(len(LEAD_LABELS))})
    return {"report": report, "previous": before, "daily": daily, "heatmap": heat,
            "services_total": services_total, "lead_histogram": histogram}


def _category_hours(stages: pd.DataFrame, actions: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: hours in queue, build, test, approval and deploy stages (a stage's category)."""
    s = stages.assign(hours=((stages["finished_at"] - stages["started_at"]) / pd.Timedelta(hours=1)).clip(lower=0))
    per_run = s.pivot_table(index="pipeline_run_id", columns="category", values="hours", aggfunc="sum")
    first_action = actions.groupby("pipeline_run_id")["started_at"].min()
    indexed = runs.set_index("id")
    queue = (first_action.reindex(indexed.index) - indexed["queued_at"].fillna(indexed["started_at"])) / pd.Timedelta(hours=1)
    out = pd.DataFrame(index=indexed.index)
    out["queue"] = queue.clip(lower=0)
    for category in CATEGORIES[1:]:
        out[category] = per_run[category].reindex(indexed.index) if category in per_run else np.nan
    return out.join(indexed[["service", "pipeline"]])


@st.cache_data(ttl=TTL, show_spinner="Computing pipeline metrics ...")
def pipelines(url: str, start: datetime, end: datetime, tz: str, service: str | None, team: str | None,
              environment: str | None, slowest: int = 25) -> dict[str, Any]:
    """`gatewatch pipelines` for the window, the per-pipeline duration breakdown and the slowest runs."""
    window = Window(start, end, tz)
    frames = load_pipeline_frames(engine(url), start, end, Scope(service, team, environment))
    report = pipeline_analysis.report(frames, window)
    runs = frames.runs
    finished = runs[runs["finished_at"].notna() & runs["started_at"].notna()
                    & (runs["finished_at"] >= start) & (runs["finished_at"] < end)].copy()
    finished["hours"] = (finished["finished_at"] - finished["started_at"]) / pd.Timedelta(hours=1)
    slow = finished.nlargest(slowest, "hours")[["id", "service", "pipeline", "status", "revision", "started_at",
                                                  "finished_at", "hours"]]
    breakdown = pd.DataFrame(columns=["service", "pipeline", "category", "median_hours"])
    if not finished.empty:
        per_run = _category_hours(frames.stages, frames.actions, finished)
        breakdown = (per_run.groupby(["service", "pipeline"])[list(CATEGORIES)].median().reset_index()
                     .melt(id_vars=["service", "pipeline"], var_name="category", value_name="median_hours")
                     .dropna(subset=["median_hours"]))
    a = frames.actions
    approvals = a[a["category"].eq("approval") & a["pipeline_run_id"].isin(finished["id"])]
    approvals = approvals.merge(runs[["id", "service", "pipeline"]], left_on="pipeline_run_id", right_on="id")
    approval_rows = [{"service": k[0], "pipeline": k[1],
                      **duration_stats((g["finished_at"] - g["started_at"]) / pd.Timedelta(hours=1))}
                     for k, g in approvals.groupby(["service", "pipeline"])]
    return {"report": report, "breakdown": breakdown, "slowest": slow.reset_index(drop=True),
            "approvals": pd.DataFrame(approval_rows)}


@st.cache_data(ttl=TTL, show_spinner=False)
def run_detail(url: str, run_id: str) -> dict[str, pd.DataFrame]:
    return load_run_detail(engine(url), run_id)


@st.cache_data(ttl=TTL, show_spinner="Looking for what needs a person ...")
def open_work(url: str, since: datetime, service: str | None, team: str | None, environment: str | None,
              now: datetime) -> dict[str, pd.DataFrame]:
    """On-call lists: stuck runs (running longer than their pipeline's p90 since `since`), pipelines
    whose latest finished run failed, deployments in progress, rollbacks, open incidents."""
    work = load_open_work(engine(url), since, Scope(service, team, environment))
    finished = work["finished_runs"]
    p90 = pd.Series(dtype=float)
    if not finished.empty:
        hours = (finished["finished_at"] - finished["started_at"]) / pd.Timedelta(hours=1)
        p90 = hours.groupby([finished["service"], finished["pipeline"]]).quantile(0.9)
    active = work["active_runs"].copy()
    active["running_hours"] = (pd.Timestamp(now) - active["started_at"].fillna(active["queued_at"])) / pd.Timedelta(hours=1)
    keys = list(zip(active["service"], active["pipeline"]))
    active["p90_hours"] = [p90.get(k, np.nan) for k in keys]
    active["stuck"] = active["running_hours"] > active["p90_hours"]
    failed = work["failed_runs"]
    if not failed.empty and not finished.empty:
        latest = finished.groupby(["service", "pipeline"])["finished_at"].max()
        is_latest = [latest.get(k) == at for k, at in zip(zip(failed["service"], failed["pipeline"]),
                                                           failed["finished_at"])]
        failed = failed[is_latest]
    return {**work, "active_runs": active.sort_values("running_hours", ascending=False), "failing_runs": failed}


@st.cache_data(ttl=TTL, show_spinner=False)
def gate_decisions(url: str, start: datetime, end: datetime, service: str | None, team: str | None) -> pd.DataFrame:
    """The audit log with its JSON columns parsed."""
    frame = load_gate_decisions(engine(url), start, end, Scope(service=service, team=team))
    for column, empty in (("checks", "[]"), ("reasons", "[]"), ("actions", "[]"), ("evidence", "{}")):
        frame[column] = [json.loads(v or empty) for v in frame[column]]
    return frame


def since_for_oncall(window: Window, now: datetime) -> datetime:
    """On-call looks back over the window, at most 30 days (older failures are history, not work)."""
    return max(window.start, now - timedelta(days=30))
