"""The dashboard's cached queries: each calls the service API (`gatewatch.api`: filtered in SQL, computed
by `analysis`) and keeps only what a page draws, so a warm render unpickles little."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from gatewatch import api

from . import workers
from .common import PAST_TTL, TTL, config, engine

LEAD_BINS = [0, 0.25, 1, 4, 8, 24, 48, 168, 336, 720, np.inf]
LEAD_LABELS = ["< 15 min", "15 min-1 h", "1-4 h", "4-8 h", "8-24 h", "1-2 d", "2-7 d", "1-2 wk", "2-4 wk", "> 4 wk"]
HEATMAP_SERVICES = 40
CATEGORIES = ("queue", "build", "test", "approval", "deploy")


@st.cache_data(ttl=PAST_TTL, show_spinner=False)
def previous_report(url: str, start: datetime, end: datetime, tz: str, scope: api.Scope) -> dict[str, Any]:
    """The plain `gatewatch dora` report of a past period (the executive page's comparison), computed
    in the worker process. Its window lies in the past, so it is kept longer than the current
    window's figures."""
    return workers.dora_report_elsewhere(url, config(), api.Window(start, end, tz), scope)


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


def dora_reports(
    url: str, window: api.Window, previous: api.Window, scope: api.Scope
) -> tuple[dict, dict, api.DoraDetails]:
    """`gatewatch dora --by week` for the window with its annotated frames (for drill-downs), and the
    plain report for the previous period: the service API's calls, as the CLI's. Unless it is cached,
    the previous period is computed in the worker process meanwhile."""
    before = _Beside(previous_report, url, previous.start, previous.end, previous.tz, scope)
    before.start()
    details = api.dora_details(engine(url), config(), window, scope, by="week")
    return details.report, before.result(), details


def _local_day(series: pd.Series, tz: str) -> pd.Series:
    return series.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


@st.cache_data(ttl=TTL, show_spinner="Computing the DORA keys ...")
def executive(
    url: str, start: datetime, end: datetime, tz: str, service: str | None, team: str | None, environment: str | None
) -> dict[str, Any]:
    """Everything the executive page draws: both reports, daily cadence, CFR by service and week,
    the lead-time histogram."""
    window = api.Window(start, end, tz)
    previous = api.Window(start - (end - start), start, tz)
    report, before, details = dora_reports(url, window, previous, api.Scope(service, team, environment))
    deps = details.window_deployments(window)
    day = _local_day(deps["finished_at"], tz)
    daily = (
        pd.DataFrame({"day": day, "failed": deps["failed"].to_numpy(dtype=bool)})
        .groupby(["day", "failed"])
        .size()
        .rename("deployments")
        .reset_index()
    )
    daily["outcome"] = np.where(daily["failed"], "failed", "ok")
    week = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
    per_week = (
        pd.DataFrame(
            {
                "service": deps["service"].to_numpy(),
                "week": week.to_numpy(),
                "failed": deps["failed"].to_numpy(dtype=int),
            }
        )
        .groupby(["service", "week"])["failed"]
        .agg(["size", "sum"])
        .reset_index()
        .rename(columns={"size": "deployments", "sum": "failed"})
    )
    busiest = per_week.groupby("service")["deployments"].sum().nlargest(HEATMAP_SERVICES).index
    services_total = int(per_week["service"].nunique())
    heat = per_week[per_week["service"].isin(busiest)].copy()
    heat["rate"] = heat["failed"] / heat["deployments"]
    heat["week"] = pd.to_datetime(heat["week"]).dt.strftime("%Y-%m-%d")
    lead = details.lead_hours(window)
    counts, _ = np.histogram(lead, bins=LEAD_BINS)
    histogram = pd.DataFrame({"lead_time": LEAD_LABELS, "changes": counts, "order": range(len(LEAD_LABELS))})
    return {
        "report": report,
        "previous": before,
        "daily": daily,
        "heatmap": heat,
        "services_total": services_total,
        "lead_histogram": histogram,
    }


@st.cache_data(ttl=TTL, show_spinner=False)
def production_stage_warnings(url: str) -> list[str]:
    """CodePipeline pipelines none of whose stages is production by the configuration."""
    return api.production_stage_warnings(engine(url), config())


@st.cache_data(ttl=TTL, show_spinner="Computing pipeline metrics ...")
def pipelines(
    url: str,
    start: datetime,
    end: datetime,
    tz: str,
    service: str | None,
    team: str | None,
    environment: str | None,
    slowest: int = 25,
) -> dict[str, Any]:
    """`gatewatch pipelines` for the window, the per-pipeline duration breakdown and the slowest runs."""
    return api.pipeline_overview(
        engine(url), api.Window(start, end, tz), api.Scope(service, team, environment), slowest
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def run_detail(url: str, run_id: str) -> dict[str, pd.DataFrame]:
    return api.run_detail(engine(url), run_id)


@st.cache_data(ttl=TTL, show_spinner="Looking for what needs a person ...")
def oncall_board(
    url: str, since: datetime, service: str | None, team: str | None, environment: str | None, now: datetime
) -> dict[str, pd.DataFrame]:
    """The On-call lists (`api.oncall_board`): failing and running pipelines with their current stage,
    approvals waiting, failed or marginal canaries, gate holds and rollbacks, rollbacks in progress and
    open incidents, each with its age, newest first."""
    return api.oncall_board(engine(url), config(), since, api.Scope(service, team, environment), now)


@st.cache_data(ttl=TTL, show_spinner=False)
def gate_decisions(url: str, start: datetime, end: datetime, service: str | None, team: str | None) -> pd.DataFrame:
    """The audit log with its JSON columns parsed."""
    return api.gate_decisions_between(engine(url), start, end, api.Scope(service=service, team=team))


def since_for_oncall(window: api.Window, now: datetime) -> datetime:
    """On-call looks back over the window, at most 30 days (older failures are history, not work)."""
    return max(window.start, now - timedelta(days=30))
