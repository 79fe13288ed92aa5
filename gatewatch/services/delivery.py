"""Delivery analytics: the DORA keys and pipeline metrics of a window and scope, computed in one place
for the CLI, the dashboard, the gates and the notebooks (with the configured tiers and link window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from analysis import dora
from analysis import pipelines as pipeline_analysis
from analysis.tiers import Benchmark
from analysis.windows import FIRST_DAY, LAST_DAY, Window, window_between, window_since
from collector.config import Config
from collector.listings import load_open_work, load_run_detail
from collector.loaders import Scope, load_dora_frames, load_pipeline_frames
from collector.timeutil import utcnow
from gatewatch.errors import ConfigError
from gatewatch.schema import parse_duration

__all__ = [
    "DoraDetails",
    "dora_details",
    "dora_frames",
    "dora_report",
    "dora_settings",
    "open_work",
    "pipeline_overview",
    "pipeline_report",
    "report_window",
    "run_detail",
]


def report_window(
    since: str | None = None,
    start: str | date | None = None,
    end: str | date | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
) -> Window:
    """The report window from `since` (whole days or weeks up to today, default 90d) or `start`/`end`
    (local dates in `tz`, end excluded); ConfigError says which option is wrong."""
    if start or end:
        if since:
            raise ConfigError("use either --since or --start/--end, not both")
        first, last = _date(start, "--start"), _date(end, "--end")
        if first is None or last is None:
            raise ConfigError("--start and --end go together (the window is [start, end), end excluded)")
        if last <= first:
            raise ConfigError(f"--end {last} must be after --start {first} (the end day is excluded)")
        return window_between(first, last, tz)
    try:
        span = parse_duration(since or "90d")
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    if span.total_seconds() % 86400 or span.days < 1:
        raise ConfigError(f"--since {since!r}: use whole days or weeks, e.g. 90d or 12w")
    now = now or utcnow()
    longest = (now.date() - FIRST_DAY).days
    if span.days > longest:
        raise ConfigError(f"--since {since!r}: the window would start before {FIRST_DAY}; use at most {longest}d")
    return window_since(span.days, now, tz)


def _date(value: str | date | None, option: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r}: expected a date such as 2024-05-01") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ConfigError(f"{option} {value!r}: expected a date from {FIRST_DAY} to {LAST_DAY}")
    return day


def dora_settings(
    config: Config, benchmark: str | Benchmark | None = None, link_window: str | timedelta | None = None
) -> tuple[Benchmark, timedelta]:
    """The tier table and link window a report uses: the given ones, else `dora.benchmark` and
    `dora.link_window` from the configuration."""
    bench = benchmark if isinstance(benchmark, Benchmark) else config.dora.tiers(benchmark)
    if link_window is None:
        return bench, config.dora.link_window
    if isinstance(link_window, str):
        try:
            link_window = parse_duration(link_window)
        except ValueError as exc:
            raise ConfigError(f"--link-window: {exc}") from None
    return bench, link_window


def dora_frames(
    engine: Engine,
    config: Config,
    window: Window,
    scope: Scope | None = None,
    link_window: str | timedelta | None = None,
) -> dora.DoraFrames:
    """The rows the DORA report of `window` reads (deployments, changes, incidents, commit links)."""
    _, link = dora_settings(config, None, link_window)
    return load_dora_frames(engine, window.start, window.end, scope or Scope(), link)


@dataclass(frozen=True)
class DoraDetails:
    """A DORA report and the annotated frames it was computed from (for drill-downs and charts)."""

    report: dict[str, Any]
    annotated: dora.Annotated

    def window_deployments(self, window: Window) -> pd.DataFrame:
        """The annotated deployments finished in `window` (failed, recovery_hours, rework ...)."""
        return dora.window_deployments(self.annotated, window)

    def lead_hours(self, window: Window) -> Any:
        """The lead times (hours) of the changes first deployed in `window`."""
        return dora.window_lead_hours(self.annotated, window)


def dora_details(
    engine: Engine,
    config: Config,
    window: Window,
    scope: Scope | None = None,
    *,
    by: str | None = None,
    benchmark: str | Benchmark | None = None,
    link_window: str | timedelta | None = None,
) -> DoraDetails:
    """`dora_report` with the annotated frames behind it."""
    bench, link = dora_settings(config, benchmark, link_window)
    frames = load_dora_frames(engine, window.start, window.end, scope or Scope(), link)
    annotated = dora.annotate(frames, link)
    return DoraDetails(dora.report_annotated(annotated, window, by=by, benchmark=bench, link_window=link), annotated)


def dora_report(
    engine: Engine,
    config: Config,
    window: Window,
    scope: Scope | None = None,
    *,
    by: str | None = None,
    benchmark: str | Benchmark | None = None,
    link_window: str | timedelta | None = None,
) -> dict[str, Any]:
    """The DORA keys of `window` for `scope` (`gatewatch dora --json`), with the configured tier table
    and link window unless given, and with `by` (day, week, month) a `series` of buckets."""
    return dora_details(engine, config, window, scope, by=by, benchmark=benchmark, link_window=link_window).report


def pipeline_report(engine: Engine, window: Window, scope: Scope | None = None) -> dict[str, Any]:
    """Pipeline metrics of `window` over every environment unless `scope` names one (`gatewatch pipelines`)."""
    frames = load_pipeline_frames(engine, window.start, window.end, scope or Scope())
    return pipeline_analysis.report(frames, window)


def pipeline_overview(engine: Engine, window: Window, scope: Scope | None = None, slowest: int = 25) -> dict[str, Any]:
    """`pipeline_report` with the median time per execution in each kind of stage (`breakdown`), the
    `slowest` executions and approval latency per pipeline (`approvals`): the Pipelines page."""
    frames = load_pipeline_frames(engine, window.start, window.end, scope or Scope())
    return {
        "report": pipeline_analysis.report(frames, window),
        "breakdown": pipeline_analysis.stage_breakdown(frames, window),
        "slowest": pipeline_analysis.slowest_runs(frames.runs, window, slowest),
        "approvals": pipeline_analysis.approval_latency_by_pipeline(frames, window),
    }


def open_work(
    engine: Engine, since: datetime, scope: Scope | None = None, now: datetime | None = None
) -> dict[str, pd.DataFrame]:
    """What needs a person now: running executions (`active_runs`, with `stuck` when running longer than
    their pipeline's p90 since `since`), pipelines whose latest finished execution failed
    (`failing_runs`), deployments in progress, rollbacks and open incidents since `since`."""
    work = load_open_work(engine, since, scope or Scope())
    finished = work["finished_runs"]
    return {
        **work,
        "active_runs": pipeline_analysis.running_runs(work["active_runs"], finished, now or utcnow()),
        "failing_runs": pipeline_analysis.failing_pipelines(work["failed_runs"], finished),
    }


def run_detail(engine: Engine, run_id: str) -> dict[str, pd.DataFrame]:
    """One pipeline execution's stages (each with its category as the Pipelines figures classify it) and
    actions, in start order."""
    detail = load_run_detail(engine, run_id)
    actions = detail["actions"]
    return {
        "stages": pipeline_analysis.classified(detail["stages"], actions),
        "actions": actions.drop(columns="declared_category"),
    }
