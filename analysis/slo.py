"""SLOs: the SLO file schema, the SLI over a rolling window, the error budget, and multiwindow burn-rate
alerts (Google SRE workbook, "Alerting on SLOs": a pair fires only when both its long and its short
window burn faster than the threshold). Pure: good/total counts in, figures out; the counts come
from a CSV frame or from a server's window sums (collector.telemetry.sli), through one computation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator, model_validator

from gatewatch.errors import SloError
from gatewatch.schema import HttpUrl, Model, PositiveDuration, duration_label, parse_duration, validate

# (long window, short window, burn-rate threshold, severity), from the SRE workbook.
BURN_RATE_PAIRS: tuple[tuple[timedelta, timedelta, float, str], ...] = (
    (timedelta(hours=1), timedelta(minutes=5), 14.4, "page"),
    (timedelta(hours=6), timedelta(minutes=30), 6.0, "page"),
    (timedelta(days=1), timedelta(hours=2), 3.0, "ticket"),
    (timedelta(days=3), timedelta(hours=6), 1.0, "ticket"),
)

Sums = Mapping[timedelta, tuple[float, float]]  # span -> (good, total) over (at - span, at]
Counts = Sequence[float] | np.ndarray  # good or total counts, one per time


@dataclass(frozen=True)
class BurnRateAlert:
    """One window pair: both burn rates, and whether the alert fires."""

    long_window: timedelta
    short_window: timedelta
    threshold: float
    severity: str
    long_burn_rate: float | None
    short_burn_rate: float | None
    firing: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "long_window": duration_label(self.long_window),
            "short_window": duration_label(self.short_window),
            "threshold": self.threshold,
            "severity": self.severity,
            "long_burn_rate": self.long_burn_rate,
            "short_burn_rate": self.short_burn_rate,
            "firing": self.firing,
        }


@dataclass(frozen=True)
class SloStatus:
    """An SLO's state at `at`: SLI and error budget over the window, and burn-rate alerts."""

    objective: float  # a fraction, e.g. 0.999
    window: timedelta
    at: datetime
    good: float
    total: float
    sli: float | None
    budget_total: float | None  # allowed bad events over the window
    budget_used: float | None  # bad events so far
    budget_remaining: float | None  # fraction of the budget left (negative when overspent)
    alerts: list[BurnRateAlert] = field(default_factory=list)
    reason: str | None = None
    newest: datetime | None = None  # the SLI's newest data point at or before `at`, where known
    stale: str | None = None  # why the SLI data is too old to judge at `at`: no data for every figure
    gaps: str | None = None  # where a pair's short window is mostly without data: no data for burn rates

    @property
    def firing(self) -> list[BurnRateAlert]:
        return [a for a in self.alerts if a.firing]

    @property
    def exhausted(self) -> bool:
        """The error budget is spent (nothing, or less than nothing, remains)."""
        return self.budget_remaining is not None and self.budget_remaining <= 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "window": duration_label(self.window),
            "at": self.at.isoformat(),
            "good": self.good,
            "total": self.total,
            "sli": self.sli,
            "error_budget": {"total": self.budget_total, "used": self.budget_used, "remaining": self.budget_remaining},
            "burn_rates": [a.to_dict() for a in self.alerts],
            "firing": [a.to_dict() for a in self.firing],
            "reason": self.reason,
            "newest": self.newest.isoformat() if self.newest else None,
            "stale": self.stale,
            "gaps": self.gaps,
        }


label = duration_label


def age_label(span: timedelta) -> str:
    """An age for people: 45s, 12m, 6h31m, 3d4h."""
    seconds = max(int(span.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{secs}s"


def staleness_bound(step: timedelta | None, configured: timedelta | None = None) -> timedelta:
    """How old the newest SLI point may be: the SLO's `max_staleness`, else two evaluation steps or
    10 minutes, whichever is larger."""
    if configured is not None:
        return configured
    return max(2 * step, timedelta(minutes=10)) if step else timedelta(minutes=10)


def freshness(newest: datetime | None, at: datetime, bound: timedelta) -> str | None:
    """Why SLI data is too old to judge at `at` (None when it is fresh): no point at all, or a newest
    point older than `bound`."""
    if newest is None:
        return "stale: no SLI data at or before this time"
    if at - newest > bound:
        return f"stale: newest point {age_label(at - newest)} ago (at most {age_label(bound)} allowed)"
    return None


def gaps(
    coverage: Mapping[timedelta, float], pairs: Iterable[tuple[timedelta, timedelta, float, str]] = BURN_RATE_PAIRS
) -> str | None:
    """Why burn rates cannot be judged (None when they can): a pair's short window of which more than
    half holds no data (`coverage`: span -> the share of it that holds data)."""
    for _, short, _, _ in pairs:
        share = coverage.get(short)
        if share is not None and share < 0.5:
            return f"gaps: no data over {1 - share:.0%} of the last {duration_label(short)} (at most half allowed)"
    return None


def fraction(objective: float) -> float:
    """The objective as a fraction: 99.9 (a percentage) or 0.999."""
    if isinstance(objective, bool) or not isinstance(objective, (int, float)) or not math.isfinite(objective):
        raise SloError(f"objective: expected a number such as 99.9 or 0.999, got {objective!r}")
    value = objective / 100.0 if objective > 1 else float(objective)
    if not 0 < value < 1:
        raise SloError(f"objective: expected a target between 0 and 100% (exclusive), got {objective!r}")
    return value


# --- the SLO file ------------------------------------------------------------------------------------

_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# a plain series selector: name{matchers} or {matchers}, quoted values may hold any character
_SELECTOR = re.compile(
    r'\s*(?:[a-zA-Z_:][a-zA-Z0-9_:]*\s*(?:\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})?'
    r'|\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})\s*'
)
Text = Annotated[str, Field(min_length=1)]


def _stripped(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


class DataSli(Model):
    """SLI counts per interval from a CSV file: timestamp (interval end), good, total."""

    path: Annotated[Path, Field(strict=False)]

    @field_validator("path", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise ValueError(f"expected the path of a CSV file of timestamp, good, total, got {value!r}")
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        return value if value.is_absolute() or base is None else Path(base) / value


class RatioSli(Model):
    """Good and total counters as PromQL: selectors, or expressions with a `{window}` placeholder."""

    good: Text
    total: Text

    @field_validator("good", "total")
    @classmethod
    def _counter(cls, query: str) -> str:
        query = _stripped(query)
        if "{window}" not in query and not _SELECTOR.fullmatch(query):
            raise ValueError(
                f'expected a counter selector such as http_requests_total{{job="api",code!~"5.."}}, '
                f"or an expression with a [{{window}}] range placeholder, got {query!r}"
            )
        return query


class ThresholdSli(Model):
    """A latency threshold: good = the histogram's `_bucket{le=...}` counter, total = its `_count`."""

    metric: Text
    le: str
    selector: str | dict[str, str] | None = None

    @field_validator("metric")
    @classmethod
    def _histogram(cls, metric: str) -> str:
        metric = _stripped(metric)
        for suffix in ("_bucket", "_count", "_sum"):
            if metric.endswith(suffix):
                metric = metric[: -len(suffix)]
        if not _METRIC.fullmatch(metric):
            raise ValueError(f"expected a histogram's name such as http_request_duration_seconds, got {metric!r}")
        return metric

    @field_validator("le", mode="before")
    @classmethod
    def _bound(cls, le: Any) -> Any:
        if isinstance(le, bool) or not isinstance(le, (str, int, float)):
            raise ValueError(f'expected a bucket bound such as "0.3", got {le!r}')
        try:
            float(str(le))
        except ValueError:
            raise ValueError(f'expected a bucket bound such as "0.3", got {le!r}') from None
        return str(le)

    @field_validator("selector")
    @classmethod
    def _selector(cls, selector: str | dict[str, str] | None) -> str | dict[str, str] | None:
        return None if isinstance(selector, str) and not selector.strip() else selector


# Statistics that count events: a CloudWatch SLI adds up counts per period.
COUNTING_STATS = ("Sum", "SampleCount")


class CloudWatchCounter(Model):
    """A CloudWatch metric that counts events: namespace, metric name, a counting statistic, dimensions."""

    namespace: Text
    metric_name: Text
    stat: str = "Sum"
    dimensions: dict[str, Annotated[str, Field(strict=False)]] = Field(default_factory=dict)

    @field_validator("stat")
    @classmethod
    def _counting(cls, stat: str) -> str:
        if stat not in COUNTING_STATS:
            raise ValueError(f"expected Sum or SampleCount (an SLI counts events), got {stat!r}")
        return stat

    @field_validator("dimensions", mode="before")
    @classmethod
    def _values(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):
            return {k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in raw.items()}
        return raw

    def query(self, query_id: str, period: int, return_data: bool = True) -> dict[str, Any]:
        """A GetMetricData / PutMetricAlarm MetricDataQuery of this metric summed per `period` seconds."""
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
                },
                "Period": period,
                "Stat": self.stat,
            },
            "ReturnData": return_data,
        }


class CloudWatchSli(Model):
    """Event counts from CloudWatch: `total` and exactly one of `good` or `errors`, in one region."""

    good: CloudWatchCounter | None = None
    errors: CloudWatchCounter | None = None
    total: CloudWatchCounter
    region: str | None = None

    @model_validator(mode="after")
    def _one(self) -> CloudWatchSli:
        if (self.good is None) == (self.errors is None):
            raise ValueError(
                "expected exactly one of good or errors beside total, e.g. "
                "errors: {namespace: MyApp, metric_name: Errors}"
            )
        return self

    @property
    def counted(self) -> tuple[str, CloudWatchCounter]:
        """("good" or "errors", its metric): the series counted against `total`."""
        return ("good", self.good) if self.good is not None else ("errors", self.errors)  # type: ignore[return-value]


SLI_KINDS = ("data", "ratio", "threshold", "cloudwatch")
PROMETHEUS_KINDS = ("ratio", "threshold")


class Sli(Model):
    """Where the SLI's good and total counts come from: exactly one of data, ratio, threshold, cloudwatch."""

    data: DataSli | None = None
    ratio: RatioSli | None = None
    threshold: ThresholdSli | None = None
    cloudwatch: CloudWatchSli | None = None

    @model_validator(mode="before")
    @classmethod
    def _one(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            raise ValueError(
                "required; expected one of {data: sli.csv}, {ratio: {good, total}}, "
                "{threshold: {metric, le, selector}} or {cloudwatch: {errors, total}}"
            )
        given = [k for k in SLI_KINDS if raw.get(k) is not None]
        if len(given) != 1 or set(raw) - set(SLI_KINDS):
            raise ValueError(f"expected exactly one of {', '.join(SLI_KINDS)}; got {sorted(map(str, raw))}")
        if isinstance(raw.get("data"), (str, Path)):
            return {"data": {"path": raw["data"]}}
        return raw

    @property
    def kind(self) -> str:
        """data, ratio, threshold or cloudwatch."""
        return next(k for k in SLI_KINDS if getattr(self, k) is not None)


class PrometheusSource(Model):
    """Where a Prometheus-compatible server answers the SLI's queries."""

    url: HttpUrl
    timeout: PositiveDuration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")


class SloSpec(Model):
    """An SLO file: the service, its name, the objective (a fraction), the rolling window, and the SLI."""

    service: Text
    name: Text
    description: str | None = None
    objective: float
    window: PositiveDuration = timedelta(days=28)
    sli: Sli
    prometheus: PrometheusSource | None = None
    max_staleness: PositiveDuration | None = None  # default: two evaluation steps or 10 minutes
    runbook_url: HttpUrl | None = None  # for alert rules; default: the config's runbooks[service]

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: Any, info: ValidationInfo) -> Any:
        if isinstance(raw, Mapping):
            raw = dict(raw)
            default_name = (info.context or {}).get("default_name")
            if "name" not in raw and default_name:
                raw["name"] = default_name
            if raw.get("sli") is None:
                raw.pop("sli", None)
        return raw

    @field_validator("service", "name")
    @classmethod
    def _strip(cls, value: str) -> str:
        return _stripped(value)

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> float:
        try:
            return fraction(value)
        except SloError as exc:
            raise ValueError(str(exc).removeprefix("objective: ")) from None

    @field_validator("window", mode="before")
    @classmethod
    def _rolling(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):  # OpenSLO's {duration: 28d, isRolling: true}
            unknown = set(raw) - {"duration", "rolling", "isRolling"}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(map(str, unknown))}; expected duration, rolling")
            if raw.get("rolling", raw.get("isRolling", True)) is not True:
                raise ValueError("rolling: only rolling windows are supported; set rolling: true")
            if "duration" not in raw:
                raise ValueError("duration: required, e.g. 28d")
            try:
                return parse_duration(raw["duration"])
            except ValueError:
                raise ValueError(
                    f"duration: expected a duration such as 28d, 30d or 4w, got {raw['duration']!r}"
                ) from None
        if not isinstance(raw, (str, timedelta)):
            raise ValueError(f"expected a duration such as 28d, 30d or 4w, got {raw!r}")
        return raw

    @model_validator(mode="after")
    def _server(self) -> SloSpec:
        if self.sli.kind in PROMETHEUS_KINDS and self.prometheus is None:
            raise ValueError(
                f"prometheus.url: required for a {self.sli.kind} SLI, e.g. prometheus: {{url: http://prometheus:9090}}"
            )
        if self.sli.kind not in PROMETHEUS_KINDS and self.prometheus is not None:
            raise ValueError(
                f"prometheus: only used by ratio and threshold SLIs; remove it or replace sli.{self.sli.kind}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "name": self.name,
            "objective": self.objective,
            "window": duration_label(self.window),
            "sli": self.sli.kind,
        }


def slo_from_mapping(raw: Any, base_dir: Path = Path("."), default_name: str | None = None) -> SloSpec:
    """Validate a parsed SLO file (YAML); SloError names the field (`sli.ratio.good: required`).

    Paths inside are relative to `base_dir`; `name` defaults to `default_name` (the file's stem)."""
    return validate(SloSpec, raw, error=SloError, context={"base_dir": base_dir, "default_name": default_name})


# --- figures from window sums: the one computation ---------------------------------------------------


def spans(
    window: timedelta, pairs: Iterable[tuple[timedelta, timedelta, float, str]] = BURN_RATE_PAIRS
) -> list[timedelta]:
    """The windows whose good/total sums the figures need: the SLO window and every pair's two windows."""
    out = [window]
    for long_w, short_w, _, _ in pairs:
        out += [long_w, short_w]
    return list(dict.fromkeys(out))


def burn_rate_of(good: float, total: float, objective: float) -> float | None:
    """Error rate over a window divided by the error rate the objective allows; None without events."""
    if total <= 0:
        return None
    return (max(total - good, 0.0) / total) / (1.0 - objective)


def from_sums(
    objective: float,
    window: timedelta,
    at: datetime,
    sums: Sums,
    pairs: tuple[tuple[timedelta, timedelta, float, str], ...] = BURN_RATE_PAIRS,
) -> SloStatus:
    """The SLO's figures at `at` from the good/total sums over each of `spans(window, pairs)`."""
    objective = fraction(objective)
    missing = [s for s in spans(window, pairs) if s not in sums]
    if missing:
        raise ValueError(f"window sums: missing {', '.join(duration_label(s) for s in missing)}")
    alerts = []
    for long_w, short_w, threshold, severity in pairs:
        long_rate = burn_rate_of(*sums[long_w], objective)
        short_rate = burn_rate_of(*sums[short_w], objective)
        firing = long_rate is not None and short_rate is not None and long_rate > threshold and short_rate > threshold
        alerts.append(BurnRateAlert(long_w, short_w, threshold, severity, long_rate, short_rate, firing))
    good, total = (float(v) for v in sums[window])
    if total <= 0:
        return SloStatus(
            objective, window, at, good, total, None, None, None, None, alerts, reason="no events in the SLO window"
        )
    bad = max(total - good, 0.0)
    budget = (1.0 - objective) * total
    return SloStatus(objective, window, at, good, total, (total - bad) / total, budget, bad, 1.0 - bad / budget, alerts)


def budget_curve(objective: float, at: Sequence[datetime], good: Counts, total: Counts) -> pd.DataFrame:
    """The burn-down: SLI and budget remaining at each time from the SLO-window sums ending there
    (NaN where the window holds no events)."""
    objective = fraction(objective)
    good_a = np.asarray(good, dtype=np.float64)
    total_a = np.asarray(total, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bad = np.clip(total_a - good_a, 0.0, None)
        empty = ~(total_a > 0)
        sli = np.where(empty, np.nan, 1.0 - bad / total_a)
        remaining = np.where(empty, np.nan, 1.0 - bad / ((1.0 - objective) * total_a))
    return pd.DataFrame({"at": pd.to_datetime(list(at), utc=True), "sli": sli, "budget_remaining": remaining})


# --- CSV frames of counts per interval ---------------------------------------------------------------


def _frame(frame: pd.DataFrame) -> pd.DataFrame:
    missing = {"timestamp", "good", "total"} - set(frame.columns)
    if missing:
        raise ValueError(f"SLI data: missing column(s) {sorted(missing)}; expected timestamp, good, total")
    out = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(frame["timestamp"], utc=True),
            "good": pd.to_numeric(frame["good"]),
            "total": pd.to_numeric(frame["total"]),
        }
    )
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _sums(frame: pd.DataFrame, start: datetime, end: datetime) -> tuple[float, float]:
    """Good and total counts of the intervals ending in (start, end]."""
    mask = (frame["timestamp"] > start) & (frame["timestamp"] <= end)
    part = frame.loc[mask]
    return float(part["good"].sum()), float(part["total"].sum())


def frame_freshness(
    frame: pd.DataFrame,
    at: datetime,
    max_staleness: timedelta | None = None,
    pairs: Iterable[tuple[timedelta, timedelta, float, str]] = BURN_RATE_PAIRS,
) -> tuple[datetime | None, str | None, str | None]:
    """(newest point at or before `at`, why the data is stale, where it has gaps) of counts per interval:
    the evaluation step is the spacing of the newest points, and a short window's covered share is the
    intervals it holds times that step."""
    frame = _frame(frame)
    stamps = frame.loc[frame["timestamp"] <= at, "timestamp"]
    if stamps.empty:
        return None, freshness(None, at, staleness_bound(None, max_staleness)), None
    newest = stamps.iloc[-1].to_pydatetime()
    recent = stamps.iloc[-11:]
    spacing = recent.diff().dropna().median() if len(recent) > 1 else None
    step = (
        spacing.to_pytimedelta() if spacing is not None and not pd.isna(spacing) and spacing > pd.Timedelta(0) else None
    )
    coverage = {}
    if step is not None:
        for _, short, _, _ in pairs:
            held = int(((stamps > at - short) & (stamps <= at)).sum())
            coverage[short] = min(1.0, held * step / short)
    return newest, freshness(newest, at, staleness_bound(step, max_staleness)), gaps(coverage, pairs)


def window_sums(
    frame: pd.DataFrame, at: datetime, windows: Iterable[timedelta]
) -> dict[timedelta, tuple[float, float]]:
    """span -> (good, total) of the frame's intervals ending in (at - span, at]."""
    frame = _frame(frame)
    return {span: _sums(frame, at - span, at) for span in windows}


def burn_rate(frame: pd.DataFrame, objective: float, end: datetime, span: timedelta) -> float | None:
    """Error rate over (end - span, end] divided by the error rate the objective allows."""
    good, total = window_sums(frame, end, [span])[span]
    return burn_rate_of(good, total, fraction(objective))


def status(
    frame: pd.DataFrame,
    objective: float,
    window: timedelta,
    at: datetime,
    pairs: tuple[tuple[timedelta, timedelta, float, str], ...] = BURN_RATE_PAIRS,
) -> SloStatus:
    """The SLO's figures at `at` from counts per interval: columns timestamp (interval end), good, total.

    `objective` is a fraction (0.999) or a percentage (99.9)."""
    objective = fraction(objective)
    return from_sums(objective, window, at, window_sums(frame, at, spans(window, pairs)), pairs)


def frame_sums_at(frame: pd.DataFrame, times: Sequence[datetime], span: timedelta) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) of the intervals ending in (t - span, t] for each of `times`, from counts per
    interval (cumulative sums, one pass)."""
    frame = _frame(frame)
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[ns]")
    good = np.concatenate([[0.0], np.cumsum(frame["good"].to_numpy(dtype=np.float64))])
    total = np.concatenate([[0.0], np.cumsum(frame["total"].to_numpy(dtype=np.float64))])
    ends = pd.to_datetime(list(times), utc=True)
    hi = np.searchsorted(stamps, ends.tz_convert(None).to_numpy(dtype="datetime64[ns]"), side="right")
    lo = np.searchsorted(stamps, (ends - span).tz_convert(None).to_numpy(dtype="datetime64[ns]"), side="right")
    return good[hi] - good[lo], total[hi] - total[lo]


def frame_history(frame: pd.DataFrame, objective: float, window: timedelta, times: Sequence[datetime]) -> pd.DataFrame:
    """budget_curve at each of `times` from counts per interval."""
    return budget_curve(objective, list(times), *frame_sums_at(frame, times, window))


# --- burn rate over time ---------------------------------------------------------------------------------

# The burn rates charted over time: the long windows of the two page alerts.
BURN_HISTORY_WINDOWS = (timedelta(hours=1), timedelta(hours=6))
BURN_HISTORY_COLUMNS = ["at", "window", "burn_rate", "threshold", "severity"]


def burn_curve(
    objective: float,
    at: Sequence[datetime],
    sums: Mapping[timedelta, tuple[Counts, Counts]],
    pairs: Iterable[tuple[timedelta, timedelta, float, str]] = BURN_RATE_PAIRS,
) -> pd.DataFrame:
    """The burn rate over each span at each time, from the span's good/total sums ending then (NaN where
    the span holds no events): columns at, window (the span's label), burn_rate, and the threshold and
    severity of the alert whose long window the span is (NaN and None when none is)."""
    objective = fraction(objective)
    alerts: dict[timedelta, tuple[float, str | None]] = {}
    for long_w, _, threshold, severity in pairs:
        alerts.setdefault(long_w, (threshold, severity))
    times = pd.to_datetime(list(at), utc=True)
    parts = []
    for span, (good, total) in sums.items():
        good_a = np.asarray(good, dtype=np.float64)
        total_a = np.asarray(total, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(total_a > 0, np.clip(total_a - good_a, 0.0, None) / total_a / (1.0 - objective), np.nan)
        limit, level = alerts.get(span, (np.nan, None))
        parts.append(
            pd.DataFrame(
                {
                    "at": times,
                    "window": duration_label(span),
                    "burn_rate": rate,
                    "threshold": limit,
                    "severity": level,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=BURN_HISTORY_COLUMNS)
    return pd.concat(parts, ignore_index=True)[BURN_HISTORY_COLUMNS]


def frame_burn_history(
    frame: pd.DataFrame,
    objective: float,
    times: Sequence[datetime],
    windows: Iterable[timedelta] = BURN_HISTORY_WINDOWS,
) -> pd.DataFrame:
    """burn_curve at each of `times` over each of `windows`, from counts per interval."""
    return burn_curve(objective, times, {span: frame_sums_at(frame, times, span) for span in windows})
