"""SLOs: the SLI over a rolling window, the error budget, and multiwindow burn-rate alerts (Google SRE
workbook, "Alerting on SLOs": a pair fires only when both its long and its short window burn faster
than the threshold). Pure: good/total counts in, figures out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

# (long window, short window, burn-rate threshold, severity), from the SRE workbook.
BURN_RATE_PAIRS: tuple[tuple[timedelta, timedelta, float, str], ...] = (
    (timedelta(hours=1), timedelta(minutes=5), 14.4, "page"),
    (timedelta(hours=6), timedelta(minutes=30), 6.0, "page"),
    (timedelta(days=1), timedelta(hours=2), 3.0, "ticket"),
    (timedelta(days=3), timedelta(hours=6), 1.0, "ticket"),
)


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

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "window": _label(self.window), "at": self.at.isoformat(),
                "good": self.good, "total": self.total, "sli": self.sli,
                "error_budget": {"total": self.budget_total, "used": self.budget_used,
                                 "remaining": self.budget_remaining},
                "burn_rates": [a.to_dict() for a in self.alerts], "firing": [a.to_dict() for a in self.firing],
                "reason": self.reason}


def _label(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _sums(frame: pd.DataFrame, start: datetime, end: datetime) -> tuple[float, float]:
    """Good and total counts of the intervals ending in (start, end]."""
    mask = (frame["timestamp"] > start) & (frame["timestamp"] <= end)
    part = frame.loc[mask]
    return float(part["good"].sum()), float(part["total"].sum())


def burn_rate(frame: pd.DataFrame, objective: float, end: datetime, span: timedelta) -> float | None:
    """Error rate over (end - span, end] divided by the error rate the objective allows."""
    good, total = _sums(frame, end - span, end)
    if total <= 0:
        return None
    return ((total - good) / total) / (1.0 - objective)


def status(frame: pd.DataFrame, objective: float, window: timedelta, at: datetime,
           pairs: tuple[tuple[timedelta, timedelta, float, str], ...] = BURN_RATE_PAIRS) -> SloStatus:
    """The SLO's figures at `at` from counts per interval: columns timestamp (interval end), good, total.

    `objective` is a fraction (0.999) or a percentage (99.9)."""
    if objective > 1:
        objective /= 100.0
    if not 0 < objective < 1:
        raise ValueError(f"objective: expected a target between 0 and 100%, got {objective!r}")
    missing = {"timestamp", "good", "total"} - set(frame.columns)
    if missing:
        raise ValueError(f"SLI data: missing column(s) {sorted(missing)}")
    frame = frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True))
    good, total = _sums(frame, at - window, at)
    alerts = []
    for long_w, short_w, threshold, severity in pairs:
        long_rate = burn_rate(frame, objective, at, long_w)
        short_rate = burn_rate(frame, objective, at, short_w)
        firing = long_rate is not None and short_rate is not None and long_rate > threshold and short_rate > threshold
        alerts.append(BurnRateAlert(long_w, short_w, threshold, severity, long_rate, short_rate, firing))
    if total <= 0:
        return SloStatus(objective, window, at, good, total, None, None, None, None, alerts,
                         reason="no events in the SLO window")
    bad = total - good
    budget = (1.0 - objective) * total
    return SloStatus(objective, window, at, good, total, good / total, budget, bad, 1.0 - bad / budget, alerts)
