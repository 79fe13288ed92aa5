"""SLO telemetry: SLO files, and the good/total sums an SLO's figures need, from a CSV file, from
CloudWatch (GetMetricData counts per period, read into the same frame as a CSV file), or pushed into a
Prometheus-compatible server as instant queries of `sum(increase(...[window]))` (one per window, never
every sample). A server or service that cannot be read raises SourceUnavailable saying which."""

from __future__ import annotations

import dataclasses
import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.slo import (
    BURN_HISTORY_WINDOWS,
    BURN_RATE_PAIRS,
    Counts,
    PrometheusSource,
    SloSpec,
    SloStatus,
    budget_curve,
    burn_curve,
    frame_freshness,
    frame_sums_at,
    freshness,
    from_sums,
    slo_from_mapping,
    spans,
    staleness_bound,
    window_sums,
)
from analysis.slo_rules import prometheus_rules, rule_windows
from gatewatch.errors import ConfigError, SloError, SourceUnavailable
from gatewatch.schema import duration_label

from ..config import Prometheus, read_yaml
from ..redaction import mask_url, scrub
from ..textfiles import file_encoding, file_problem, read_problem
from ..timeutil import as_utc
from . import cloudwatch
from .prometheus import connect, instant_query, range_query
from .scopes import render_scope

log = logging.getLogger(__name__)


def load_slo(path: str | Path) -> SloSpec:
    """An SLO from a YAML file; paths inside it are relative to the file. ConfigError names file and field."""
    file = Path(path)
    raw = read_yaml(file, "SLO file")
    try:
        spec = slo_from_mapping(raw, base_dir=file.resolve().parent, default_name=file.stem)
        if spec.prometheus is not None:
            queries(spec, spec.window)  # refuse a selector that would not render, now rather than at query time
    except ConfigError as exc:
        raise SloError(f"{file}: {exc}") from None
    return spec


def load_slos(folder: str | Path) -> list[SloSpec]:
    """Every SLO file (`*.yaml`, `*.yml`) in a folder, sorted by file name."""
    directory = Path(folder)
    if not directory.is_dir():
        raise ConfigError(f"SLO folder {str(folder)!r}: no such folder")
    return [load_slo(file) for file in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])]


def queries(spec: SloSpec, span: timedelta) -> tuple[str, str]:
    """The instant queries (good, total) that sum the SLI's counters over `span`."""
    window = duration_label(span)
    if spec.sli.ratio is not None:
        good, total = (
            q.replace("{window}", window) if "{window}" in q else f"sum(increase({q}[{window}]))"
            for q in (spec.sli.ratio.good, spec.sli.ratio.total)
        )
        return good, total
    sli = spec.sli.threshold
    if sli is not None:
        try:
            scope = render_scope(sli.selector) if sli.selector else ""
        except ConfigError as exc:
            raise ConfigError(f"sli.threshold.selector: {exc}") from None
        le = render_scope({"le": sli.le})
        joined = f"{le}, {scope}" if scope else le
        total = f"{sli.metric}_count{{{scope}}}" if scope else f"{sli.metric}_count"
        return f"sum(increase({sli.metric}_bucket{{{joined}}}[{window}]))", f"sum(increase({total}[{window}]))"
    raise ConfigError(f"SLO {spec.name!r}: a {spec.sli.kind} SLI is not read from Prometheus")


def alert_rules(spec: SloSpec, team: str | None = None, runbook_url: str | None = None) -> list[dict[str, Any]]:
    """The SLO's Prometheus rule groups (recorded error ratios, page and ticket burn-rate alerts);
    ConfigError when its SLI is not read from Prometheus."""
    sums = {span: queries(spec, span) for span in rule_windows()}
    matchers = render_scope({"service": spec.service, "slo": spec.name})
    return prometheus_rules(spec, sums, matchers, team, spec.runbook_url or runbook_url)


def _server(spec: SloSpec) -> PrometheusSource:
    if spec.prometheus is None:  # the SLO file's schema requires one for ratio and threshold SLIs
        raise ConfigError(f"SLO {spec.name!r}: prometheus.url: required for a {spec.sli.kind} SLI")
    return spec.prometheus


def _data_path(spec: SloSpec) -> Path:
    if spec.sli.data is None:
        raise ConfigError(f"SLO {spec.name!r}: a {spec.sli.kind} SLI has no data file")
    return spec.sli.data.path


def _client(spec: SloSpec, auth: Prometheus | None) -> Any:
    """A client for the SLO's server (auth and retries as for canaries)."""
    server = _server(spec)
    return connect(server.url, auth, timeout=server.timeout.total_seconds())


def _unavailable(spec: SloSpec, exc: Exception) -> SourceUnavailable:
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    what = detail if isinstance(exc, SourceUnavailable) else f"{exc.__class__.__name__}: {detail}"
    return SourceUnavailable(
        scrub(
            f"Prometheus at {mask_url(_server(spec).url)} could not be read for SLO {spec.service}/{spec.name}: {what}"
        )
    )


def _value(result: list[dict]) -> float:
    """The value of a `sum(...)` instant query: 0 when no series matched (nothing counted)."""
    total = 0.0
    for series in result:
        number = float(series["value"][1])
        if math.isfinite(number):
            total += number
    return total


def _prometheus_sums(
    spec: SloSpec, at: datetime, windows: list[timedelta], auth: Prometheus | None
) -> dict[timedelta, tuple[float, float]]:
    client = _client(spec, auth)
    sums = {}
    try:
        for span in windows:
            good_q, total_q = queries(spec, span)
            good = _value(instant_query(client, good_q, at))
            total = _value(instant_query(client, total_q, at))
            sums[span] = (min(good, total), total)  # per-series extrapolation may put good a hair above total
    except Exception as exc:
        error = _unavailable(spec, exc)
        log.info("%s", error)
        raise error from None
    return sums


def _read_frame(spec: SloSpec) -> pd.DataFrame:
    path = _data_path(spec)
    problem = file_problem(path)
    if problem:
        raise SourceUnavailable(f"SLI data {str(path)!r} for SLO {spec.service}/{spec.name}: {problem}")
    try:
        return pd.read_csv(path, encoding=file_encoding(path))
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"SLI data {str(path)!r}: {read_problem(exc)}") from None


# GetMetricData keeps 1-minute points for 15 days, 5-minute points for 63 days and hourly points for 455:
# each part of a CloudWatch SLI's history is read at the finest period its age allows.
RESOLUTIONS = ((60, timedelta(days=15)), (300, timedelta(days=63)), (3600, timedelta(days=455)))


def _aligned(moment: datetime, step: int, up: bool = False) -> datetime:
    seconds = moment.timestamp()
    return datetime.fromtimestamp((math.ceil if up else math.floor)(seconds / step) * step, UTC)


def cloudwatch_frame(spec: SloSpec, start: datetime, end: datetime, client: Any = None) -> pd.DataFrame:
    """A CloudWatch SLI's counts per period over (start, end] as a CSV SLI holds them (columns timestamp,
    the period's end; good; total). A period without `good` counts every event bad, one without `errors`
    none; SourceUnavailable when CloudWatch cannot be read (throttling, access, endpoint): never no errors."""
    sli = spec.sli.cloudwatch
    if sli is None:
        raise ConfigError(f"SLO {spec.name!r}: a {spec.sli.kind} SLI is not read from CloudWatch")
    kind, counted = sli.counted
    try:
        client = client or cloudwatch.connect(sli.region)
    except ConfigError:
        raise ConfigError(f"SLO {spec.name!r}: sli.cloudwatch.region: no AWS region; set it or AWS_REGION") from None
    start, end = as_utc(start), as_utc(end)
    counts: dict[datetime, list[float]] = {}
    upper = _aligned(end, 60)
    try:
        for period, age in RESOLUTIONS:
            if upper <= start:
                break
            older = end - age <= start
            lower = _aligned(start, period) if older else _aligned(end - age, 3600, up=True)
            if lower < upper:
                queries = [counted.query(kind, period), sli.total.query("total", period)]
                points = cloudwatch.metric_data(client, queries, lower, upper)
                for column, name in ((0, kind), (1, "total")):
                    for stamp, value in points[name]:
                        ends = as_utc(stamp) + timedelta(seconds=period)
                        counts.setdefault(ends, [0.0, 0.0])[column] += value
            upper = lower
    except Exception as exc:
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        error = SourceUnavailable(
            f"CloudWatch could not be read for SLO {spec.service}/{spec.name}: {exc.__class__.__name__}: {detail}"
        )
        log.info("%s", error)
        raise error from None
    stamps = sorted(counts)
    total = [counts[t][1] for t in stamps]
    good = [min(counts[t][0], n) if kind == "good" else max(n - counts[t][0], 0.0) for t, n in zip(stamps, total)]
    return pd.DataFrame({"timestamp": pd.to_datetime(stamps, utc=True), "good": good, "total": total})


def _frame(spec: SloSpec, start: datetime, end: datetime) -> pd.DataFrame:
    """The SLI's counts per interval: its CSV file, or CloudWatch's over (start, end]."""
    return _read_frame(spec) if spec.sli.kind == "data" else cloudwatch_frame(spec, start, end)


def _source(spec: SloSpec) -> str:
    return f"SLI data {str(_data_path(spec))!r}" if spec.sli.kind == "data" else "CloudWatch SLI data"


def slo_status(spec: SloSpec, at: datetime, auth: Prometheus | None = None) -> SloStatus:
    """The SLO's SLI, error budget and burn-rate alerts at `at` (from its CSV file, CloudWatch or its
    server, read with `auth`'s credentials)."""
    at = as_utc(at)
    windows = spans(spec.window, BURN_RATE_PAIRS)
    if spec.sli.kind in ("data", "cloudwatch"):
        frame = _frame(spec, at - max(windows), at)
        try:
            sums = window_sums(frame, at, windows)
            newest, stale, holes = frame_freshness(frame, at, spec.max_staleness)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{_source(spec)}: {exc}") from None
    else:
        sums = _prometheus_sums(spec, at, windows, auth)
        newest, stale, holes = _prometheus_freshness(spec, at, auth, sums)
    status = from_sums(spec.objective, spec.window, at, sums, BURN_RATE_PAIRS)
    return dataclasses.replace(status, newest=newest, stale=stale, gaps=holes)


# How far back a server is asked for the SLI's newest sample, and at what resolution.
NEWEST_LOOKBACK, NEWEST_RESOLUTION = timedelta(days=1), timedelta(minutes=1)


def newest_query(spec: SloSpec) -> str | None:
    """The instant query for the timestamp of the SLI's newest `total` sample (None for an expression
    SLI, whose series Gatewatch cannot name): the latest sample time seen at each minute of a day."""
    if spec.sli.ratio is not None:
        if "{window}" in spec.sli.ratio.total:
            return None
        selector = spec.sli.ratio.total
    else:
        sli = spec.sli.threshold
        assert sli is not None
        scope = render_scope(sli.selector) if sli.selector else ""
        selector = f"{sli.metric}_count{{{scope}}}" if scope else f"{sli.metric}_count"
    span, step = duration_label(NEWEST_LOOKBACK), duration_label(NEWEST_RESOLUTION)
    return f"max(max_over_time(timestamp({selector})[{span}:{step}]))"


def _prometheus_freshness(
    spec: SloSpec, at: datetime, auth: Prometheus | None, sums: dict[timedelta, tuple[float, float]]
) -> tuple[datetime | None, str | None, str | None]:
    """(newest total sample, stale reason, None): a server's SLI is stale when its newest sample is older
    than `max_staleness` (default 10 minutes). An expression SLI is judged by its events instead: events
    in the last hour but none in the last 5 minutes mean the data stopped."""
    bound = staleness_bound(None, spec.max_staleness)
    query = newest_query(spec)
    if query is None:
        recent, hour = sums[timedelta(minutes=5)][1], sums[timedelta(hours=1)][1]
        stale = "stale: events in the last hour but none in the last 5m" if hour > 0 and recent <= 0 else None
        return None, stale, None
    try:
        result = instant_query(_client(spec, auth), query, at)
    except Exception as exc:
        raise _unavailable(spec, exc) from None
    stamps = [float(s["value"][1]) for s in result if isinstance(s, dict) and "value" in s]
    stamps = [t for t in stamps if math.isfinite(t)]
    if not stamps:
        return None, f"stale: no SLI sample in the last {duration_label(NEWEST_LOOKBACK)}", None
    newest = datetime.fromtimestamp(max(stamps), UTC)
    return newest, freshness(newest, at, bound), None


def _grid(spec: SloSpec, start: datetime, end: datetime, points: int) -> tuple[list[datetime], int | None]:
    """`points` evenly spaced times from start to end, and for a server SLI the step in whole seconds
    (its times then fall on whole seconds, as a range query answers)."""
    start, end = as_utc(start), as_utc(end)
    if points < 2 or end <= start:
        raise ConfigError("SLO history: expected at least 2 points and end after start")
    if spec.sli.kind in ("data", "cloudwatch"):
        return [start + (end - start) * i / (points - 1) for i in range(points)], None
    first = round(start.timestamp())
    step_s = max(1, int((round(end.timestamp()) - first) // (points - 1)))
    return [datetime.fromtimestamp(first + i * step_s, UTC) for i in range(points)], step_s


def _history_sums(
    spec: SloSpec, times: list[datetime], step_s: int | None, spans_: list[timedelta], auth: Prometheus | None
) -> dict[timedelta, tuple[Counts, Counts]]:
    """span -> (good, total) over the span ending at each of `times`: from the CSV file, or one range
    query each of good and total per span."""
    if spec.sli.kind in ("data", "cloudwatch"):
        frame = _frame(spec, times[0] - max(spans_), times[-1])
        try:
            return {span: frame_sums_at(frame, times, span) for span in spans_}
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{_source(spec)}: {exc}") from None
    client = _client(spec, auth)
    stamps = [round(t.timestamp()) for t in times]
    out: dict[timedelta, tuple[Counts, Counts]] = {}
    try:
        for span in spans_:
            good_q, total_q = queries(spec, span)
            series = [_by_time(range_query(client, q, times[0], times[-1], f"{step_s}s")) for q in (good_q, total_q)]
            good, total = ([s.get(t, 0.0) for t in stamps] for s in series)
            out[span] = ([min(g, t) for g, t in zip(good, total)], total)
    except Exception as exc:
        raise _unavailable(spec, exc) from None
    return out


def budget_history(
    spec: SloSpec, start: datetime, end: datetime, points: int = 48, auth: Prometheus | None = None
) -> pd.DataFrame:
    """The burn-down: columns at, sli, budget_remaining at `points` evenly spaced times from start to end,
    each over the SLO window ending then (for Prometheus one range query each of good and total, at a
    whole-second step; NaN where the window holds no events)."""
    times, step_s = _grid(spec, start, end, points)
    good, total = _history_sums(spec, times, step_s, [spec.window], auth)[spec.window]
    return budget_curve(spec.objective, times, good, total)


def burn_rate_history(
    spec: SloSpec,
    start: datetime,
    end: datetime,
    points: int = 48,
    auth: Prometheus | None = None,
    windows: tuple[timedelta, ...] = BURN_HISTORY_WINDOWS,
) -> pd.DataFrame:
    """The burn rate over each of `windows` (default 1h and 6h, the page alerts' long windows) at `points`
    evenly spaced times from start to end (columns at, window, burn_rate, threshold, severity; NaN where
    a window holds no events), read as `budget_history` reads the burn-down."""
    times, step_s = _grid(spec, start, end, points)
    return burn_curve(spec.objective, times, _history_sums(spec, times, step_s, list(windows), auth))


def _by_time(result: list[dict]) -> dict[int, float]:
    out: dict[int, float] = {}
    for series in result:
        for stamp, value in series.get("values", []):
            number = float(value)
            if math.isfinite(number):
                out[round(float(stamp))] = out.get(round(float(stamp)), 0.0) + number
    return out


__all__ = [
    "alert_rules",
    "budget_history",
    "burn_rate_history",
    "cloudwatch_frame",
    "load_slo",
    "load_slos",
    "slo_status",
]
