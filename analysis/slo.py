"""SLOs: the SLO file schema, the SLI over a rolling window, the error budget, and multiwindow burn-rate
alerts (Google SRE workbook, "Alerting on SLOs": a pair fires only when both its long and its short
window burn faster than the threshold). Pure: good/total counts in, figures out; the counts come
from a CSV frame or from a server's window sums (collector.telemetry.sli), through one computation.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

# (long window, short window, burn-rate threshold, severity), from the SRE workbook.
BURN_RATE_PAIRS: tuple[tuple[timedelta, timedelta, float, str], ...] = (
    (timedelta(hours=1), timedelta(minutes=5), 14.4, "page"),
    (timedelta(hours=6), timedelta(minutes=30), 6.0, "page"),
    (timedelta(days=1), timedelta(hours=2), 3.0, "ticket"),
    (timedelta(days=3), timedelta(hours=6), 1.0, "ticket"),
)

Sums = Mapping[timedelta, tuple[float, float]]  # span -> (good, total) over (at - span, at]


class SloError(ValueError):
    """An SLO file that does not fit the schema; the message names the field and the fix."""


@dataclass(frozen=True)
class DataSli:
    """SLI counts per interval from a CSV file: timestamp (interval end), good, total."""

    path: Path
    kind: str = "data"


@dataclass(frozen=True)
class RatioSli:
    """Good and total counters as PromQL: selectors, or expressions with a `{window}` placeholder."""

    good: str
    total: str
    kind: str = "ratio"


@dataclass(frozen=True)
class ThresholdSli:
    """A latency threshold: good = the histogram's `_bucket{le=...}` counter, total = its `_count`."""

    metric: str
    le: str
    selector: Union[str, Mapping[str, str], None] = None
    kind: str = "threshold"


@dataclass(frozen=True)
class PrometheusSource:
    """Where a Prometheus-compatible server answers the SLI's queries."""

    url: str
    timeout: float = 10.0


@dataclass(frozen=True)
class SloSpec:
    """An SLO file: the service, its name, the objective (a fraction), the rolling window, and the SLI."""

    service: str
    name: str
    objective: float
    window: timedelta
    sli: Union[DataSli, RatioSli, ThresholdSli]
    prometheus: PrometheusSource | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "name": self.name, "objective": self.objective,
                "window": _label(self.window), "sli": self.sli.kind}


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
        return {"long_window": _label(self.long_window), "short_window": _label(self.short_window),
                "threshold": self.threshold, "severity": self.severity, "long_burn_rate": self.long_burn_rate,
                "short_burn_rate": self.short_burn_rate, "firing": self.firing}


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

    @property
    def firing(self) -> list[BurnRateAlert]:
        return [a for a in self.alerts if a.firing]

    @property
    def exhausted(self) -> bool:
        """The error budget is spent (nothing, or less than nothing, remains)."""
        return self.budget_remaining is not None and self.budget_remaining <= 0

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "window": _label(self.window), "at": self.at.isoformat(),
                "good": self.good, "total": self.total, "sli": self.sli,
                "error_budget": {"total": self.budget_total, "used": self.budget_used,
                                 "remaining": self.budget_remaining},
                "burn_rates": [a.to_dict() for a in self.alerts], "firing": [a.to_dict() for a in self.firing],
                "reason": self.reason}


def _label(span: timedelta) -> str:
    """A span as a PromQL duration: 28d, 6h, 5m, 90s."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


label = _label


def fraction(objective: float) -> float:
    """The objective as a fraction: 99.9 (a percentage) or 0.999."""
    if isinstance(objective, bool) or not isinstance(objective, (int, float)) or not math.isfinite(objective):
        raise SloError(f"objective: expected a number such as 99.9 or 0.999, got {objective!r}")
    value = objective / 100.0 if objective > 1 else float(objective)
    if not 0 < value < 1:
        raise SloError(f"objective: expected a target between 0 and 100% (exclusive), got {objective!r}")
    return value


# --- the SLO file ------------------------------------------------------------------------------------

_KEYS = ("service", "name", "description", "objective", "window", "sli", "prometheus")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# a plain series selector: name{matchers} or {matchers}, quoted values may hold any character
_SELECTOR = re.compile(r'\s*(?:[a-zA-Z_:][a-zA-Z0-9_:]*\s*(?:\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})?'
                       r'|\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})\s*')


def _duration(value: Any, where: str) -> timedelta:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise SloError(f"{where}: expected a duration such as 28d, 30d or 4w, got {value!r}")
    span = timedelta(seconds=float(match.group(1)) * _SECONDS[match.group(2)])
    if span <= timedelta(0):
        raise SloError(f"{where}: expected a positive duration such as 28d, got {value!r}")
    return span


def _window(raw: Any) -> timedelta:
    if isinstance(raw, Mapping):  # OpenSLO's {duration: 28d, isRolling: true}
        unknown = set(raw) - {"duration", "rolling", "isRolling"}
        if unknown:
            raise SloError(f"window: unknown key(s) {sorted(map(str, unknown))}; expected duration, rolling")
        rolling = raw.get("rolling", raw.get("isRolling", True))
        if rolling is not True:
            raise SloError("window.rolling: only rolling windows are supported; set rolling: true")
        if "duration" not in raw:
            raise SloError("window.duration: required, e.g. 28d")
        return _duration(raw["duration"], "window.duration")
    return _duration(raw, "window")


def _text(raw: Mapping, key: str, where: str) -> str:
    value = raw.get(key)
    if value is None:
        raise SloError(f"{where}.{key}: required")
    if not isinstance(value, str) or not value.strip():
        raise SloError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value.strip()


def _counter_query(raw: Mapping, key: str) -> str:
    query = _text(raw, key, "sli.ratio")
    if "{window}" not in query and not _SELECTOR.fullmatch(query):
        raise SloError(f"sli.ratio.{key}: expected a counter selector such as "
                       f"http_requests_total{{job=\"api\",code!~\"5..\"}}, or an expression with a [{{window}}] "
                       f"range placeholder, got {query!r}")
    return query


def _sli(raw: Any, base_dir: Path) -> Union[DataSli, RatioSli, ThresholdSli]:
    kinds = ("data", "ratio", "threshold")
    if not isinstance(raw, Mapping):
        raise SloError("sli: required; expected one of {data: sli.csv}, {ratio: {good, total}} or "
                       "{threshold: {metric, le, selector}}")
    given = [k for k in raw if k in kinds]
    if len(given) != 1 or set(raw) - set(kinds):
        raise SloError(f"sli: expected exactly one of data, ratio, threshold; got {sorted(map(str, raw))}")
    kind = given[0]
    value = raw[kind]
    if kind == "data":
        if not isinstance(value, str) or not value.strip():
            raise SloError(f"sli.data: expected the path of a CSV file of timestamp, good, total, got {value!r}")
        path = Path(value)
        return DataSli(path if path.is_absolute() else base_dir / path)
    if not isinstance(value, Mapping):
        raise SloError(f"sli.{kind}: expected a mapping of settings")
    if kind == "ratio":
        unknown = set(value) - {"good", "total"}
        if unknown:
            raise SloError(f"sli.ratio: unknown key(s) {sorted(map(str, unknown))}; expected good, total")
        return RatioSli(_counter_query(value, "good"), _counter_query(value, "total"))
    unknown = set(value) - {"metric", "le", "selector"}
    if unknown:
        raise SloError(f"sli.threshold: unknown key(s) {sorted(map(str, unknown))}; expected metric, le, selector")
    metric = _text(value, "metric", "sli.threshold")
    for suffix in ("_bucket", "_count", "_sum"):
        if metric.endswith(suffix):
            metric = metric[: -len(suffix)]
    if not _METRIC.fullmatch(metric):
        raise SloError(f"sli.threshold.metric: expected a histogram's name such as http_request_duration_seconds, "
                       f"got {metric!r}")
    le = value.get("le")
    if le is None:
        raise SloError("sli.threshold.le: required; the bucket bound in seconds, as exported, e.g. \"0.3\"")
    if isinstance(le, bool) or not isinstance(le, (str, int, float)):
        raise SloError(f"sli.threshold.le: expected a bucket bound such as \"0.3\", got {le!r}")
    try:
        float(str(le))
    except ValueError:
        raise SloError(f"sli.threshold.le: expected a bucket bound such as \"0.3\", got {le!r}") from None
    selector = value.get("selector")
    if selector is not None and not isinstance(selector, (str, Mapping)):
        raise SloError(f"sli.threshold.selector: expected label matchers such as 'job=\"api\"', got {selector!r}")
    if isinstance(selector, str) and not selector.strip():
        selector = None
    return ThresholdSli(metric, str(le), selector)


def _prometheus(raw: Any) -> PrometheusSource:
    if not isinstance(raw, Mapping):
        raise SloError("prometheus: expected {url: http://prometheus:9090} for a ratio or threshold SLI")
    unknown = set(raw) - {"url", "timeout"}
    if unknown:
        raise SloError(f"prometheus: unknown key(s) {sorted(map(str, unknown))}; expected url, timeout")
    url = _text(raw, "url", "prometheus")
    if not re.match(r"https?://[^/\s]+", url):
        raise SloError(f"prometheus.url: expected an http:// or https:// URL, got {url!r}")
    timeout = raw.get("timeout", 10)
    if isinstance(timeout, str):
        timeout = _duration(timeout, "prometheus.timeout").total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SloError(f"prometheus.timeout: expected seconds or a duration such as 10s, got {timeout!r}")
    return PrometheusSource(url.rstrip("/"), float(timeout))


def slo_from_mapping(raw: Any, base_dir: Path = Path("."), default_name: str | None = None) -> SloSpec:
    """Validate a parsed SLO file (YAML); SloError names the field (`sli.ratio.good: required`).

    Paths inside are relative to `base_dir`; `name` defaults to `default_name` (the file's stem)."""
    if not isinstance(raw, Mapping):
        raise SloError("SLO: expected a mapping with service, objective, window and sli")
    unknown = set(raw) - set(_KEYS)
    if unknown:
        raise SloError(f"SLO: unknown key(s) {sorted(map(str, unknown))}; expected {', '.join(_KEYS)}")
    service = raw.get("service")
    if not isinstance(service, str) or not service.strip():
        raise SloError(f"service: required, e.g. service: checkout{'' if service is None else f', got {service!r}'}")
    service = service.strip()
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise SloError(f"name: expected the SLO's name, e.g. availability, got {name!r}")
    if "objective" not in raw:
        raise SloError("objective: required, e.g. 99.9 (percent) or 0.999")
    objective = fraction(raw["objective"])
    window = _window(raw.get("window", "28d"))
    sli = _sli(raw.get("sli"), base_dir)
    prometheus = None
    if sli.kind != "data":
        if "prometheus" not in raw:
            raise SloError(f"prometheus.url: required for a {sli.kind} SLI, e.g. prometheus: {{url: http://prometheus:9090}}")
        prometheus = _prometheus(raw["prometheus"])
    elif raw.get("prometheus") is not None:
        raise SloError("prometheus: only used by ratio and threshold SLIs; remove it or replace sli.data")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise SloError("description: expected text")
    return SloSpec(service, name.strip(), objective, window, sli, prometheus, description)


# --- figures from window sums: the one computation ---------------------------------------------------

def spans(window: timedelta, pairs: Iterable[tuple[timedelta, timedelta, float, str]] = BURN_RATE_PAIRS
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


def from_sums(objective: float, window: timedelta, at: datetime, sums: Sums,
              pairs: tuple[tuple[timedelta, timedelta, float, str], ...] = BURN_RATE_PAIRS) -> SloStatus:
    """The SLO's figures at `at` from the good/total sums over each of `spans(window, pairs)`."""
    objective = fraction(objective)
    missing = [s for s in spans(window, pairs) if s not in sums]
    if missing:
        raise ValueError(f"window sums: missing {', '.join(_label(s) for s in missing)}")
    alerts = []
    for long_w, short_w, threshold, severity in pairs:
        long_rate = burn_rate_of(*sums[long_w], objective)
        short_rate = burn_rate_of(*sums[short_w], objective)
        firing = long_rate is not None and short_rate is not None and long_rate > threshold and short_rate > threshold
        alerts.append(BurnRateAlert(long_w, short_w, threshold, severity, long_rate, short_rate, firing))
    good, total = (float(v) for v in sums[window])
    if total <= 0:
        return SloStatus(objective, window, at, good, total, None, None, None, None, alerts,
                         reason="no events in the SLO window")
    bad = max(total - good, 0.0)
    budget = (1.0 - objective) * total
    return SloStatus(objective, window, at, good, total, (total - bad) / total, budget, bad, 1.0 - bad / budget,
                     alerts)


def budget_curve(objective: float, at: Sequence[datetime], good: Sequence[float], total: Sequence[float]
                 ) -> pd.DataFrame:
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
    out = pd.DataFrame({"timestamp": pd.to_datetime(frame["timestamp"], utc=True),
                        "good": pd.to_numeric(frame["good"]), "total": pd.to_numeric(frame["total"])})
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _sums(frame: pd.DataFrame, start: datetime, end: datetime) -> tuple[float, float]:
    """Good and total counts of the intervals ending in (start, end]."""
    mask = (frame["timestamp"] > start) & (frame["timestamp"] <= end)
    part = frame.loc[mask]
    return float(part["good"].sum()), float(part["total"].sum())


def window_sums(frame: pd.DataFrame, at: datetime, windows: Iterable[timedelta]) -> dict[timedelta, tuple[float, float]]:
    """span -> (good, total) of the frame's intervals ending in (at - span, at]."""
    frame = _frame(frame)
    return {span: _sums(frame, at - span, at) for span in windows}


def burn_rate(frame: pd.DataFrame, objective: float, end: datetime, span: timedelta) -> float | None:
    """Error rate over (end - span, end] divided by the error rate the objective allows."""
    good, total = window_sums(frame, end, [span])[span]
    return burn_rate_of(good, total, fraction(objective))


def status(frame: pd.DataFrame, objective: float, window: timedelta, at: datetime,
           pairs: tuple[tuple[timedelta, timedelta, float, str], ...] = BURN_RATE_PAIRS) -> SloStatus:
    """The SLO's figures at `at` from counts per interval: columns timestamp (interval end), good, total.

    `objective` is a fraction (0.999) or a percentage (99.9)."""
    objective = fraction(objective)
    return from_sums(objective, window, at, window_sums(frame, at, spans(window, pairs)), pairs)


def frame_history(frame: pd.DataFrame, objective: float, window: timedelta, times: Sequence[datetime]
                  ) -> pd.DataFrame:
    """budget_curve at each of `times` from counts per interval (cumulative sums, one pass)."""
    frame = _frame(frame)
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[ns]")
    good = np.concatenate([[0.0], np.cumsum(frame["good"].to_numpy(dtype=np.float64))])
    total = np.concatenate([[0.0], np.cumsum(frame["total"].to_numpy(dtype=np.float64))])
    ends = pd.to_datetime(list(times), utc=True)
    hi = np.searchsorted(stamps, ends.tz_convert(None).to_numpy(dtype="datetime64[ns]"), side="right")
    lo = np.searchsorted(stamps, (ends - window).tz_convert(None).to_numpy(dtype="datetime64[ns]"), side="right")
    return budget_curve(objective, list(times), good[hi] - good[lo], total[hi] - total[lo])
