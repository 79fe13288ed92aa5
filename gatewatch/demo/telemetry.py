"""Synthesized telemetry, drawn from the seed: SLI request counts and canary samples (pure)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

SLO_WINDOW = timedelta(days=28)
SLI_STEP, SLI_FINE = timedelta(minutes=5), timedelta(days=3)
CANARY_SPAN, CANARY_STEP = timedelta(minutes=30), timedelta(seconds=30)
# How a canary differs from its baseline: multipliers of latency p99, p50, error rate and CPU.
KINDS = {"healthy": (1.0, 1.0, 1.0, 1.0), "marginal": (1.02, 1.18, 1.0, 1.03), "regressed": (1.35, 1.12, 4.0, 1.1)}


def _rng(*parts: Any) -> np.random.Generator:
    digest = hashlib.sha256(":".join(map(str, ("gatewatch-demo-extras", *parts))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _stamps(end: datetime, step: timedelta, n: int) -> list[str]:
    """ISO 8601 UTC times of the `n` intervals ending at `end`, one `step` apart."""
    return list(pd.date_range(end=pd.Timestamp(end), periods=n, freq=step).strftime("%Y-%m-%dT%H:%M:%SZ"))


def sli_intervals(end: datetime) -> tuple[list[str], np.ndarray]:
    """The SLI's interval ends over the SLO window up to `end` and their lengths in minutes: hourly,
    then every 5 minutes over the last 3 days (as a metrics store keeps recent data finer)."""
    fine = int(SLI_FINE / SLI_STEP)
    coarse = int((SLO_WINDOW - SLI_FINE) / timedelta(hours=1))
    stamps = _stamps(end - SLI_FINE, timedelta(hours=1), coarse) + _stamps(end, SLI_STEP, fine)
    return stamps, np.concatenate([np.full(coarse, 60.0), np.full(fine, SLI_STEP / timedelta(minutes=1))])


def sli_frame(
    service: str,
    profile: str,
    objective: float,
    end: datetime,
    seed: int,
    intervals: tuple[list[str], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Request counts per interval over the SLO window up to `end`: timestamp (interval end), good, total.

    healthy: errors at a steady fraction of the budget; low_budget: an outage ten days ago spent most
    of it; burning: the last 90 minutes fail at 25 times the allowed rate (a fast-burn page)."""
    rng = _rng("sli", seed, end.isoformat(), service)
    stamps, minutes = intervals or sli_intervals(end)
    ends = pd.to_datetime(stamps, utc=True, format="%Y-%m-%dT%H:%M:%SZ")
    hours = (ends.hour + ends.minute / 60).to_numpy() - minutes / 120  # the middle of each interval
    per_minute = rng.uniform(300, 1800)
    total = rng.poisson(per_minute * minutes * (1 + 0.6 * np.sin((hours - 9) / 24 * 2 * np.pi)))
    allowed = 1 - objective / 100
    rate = np.full(len(stamps), rng.uniform(0.1, 0.35) * allowed)
    if profile == "low_budget":  # an afternoon outage that, with the steady errors, spends 88% of the budget
        outage = (ends > end - timedelta(days=10) + timedelta(hours=14)) & (
            ends <= end - timedelta(days=10) + timedelta(hours=20)
        )
        rest = (rate * total)[~outage].sum()
        rate[outage] = (0.88 * allowed * total.sum() - rest) / total[outage].sum()
    elif profile == "burning":
        rate[ends > end - timedelta(minutes=90)] = 25.0 * allowed
    bad = rng.binomial(total, np.minimum(rate, 1.0))
    return pd.DataFrame({"timestamp": stamps, "good": total - bad, "total": total})


def canary_samples(deployment_id: str, kind: str, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Baseline and canary samples, one every 30 s for 30 minutes, as the judge takes them: values
    for latency (ms) and CPU (cores), (errors, requests) pairs for error_ratio."""
    rng = _rng("canary", seed, deployment_id)
    n = int(CANARY_SPAN / CANARY_STEP)
    p99, p50, cpu = rng.uniform(180, 420), rng.uniform(25, 60), rng.uniform(0.3, 0.9)
    error_rate = rng.uniform(0.001, 0.004)
    sides: dict[str, list[np.ndarray]] = {}
    for factors in ((1.0, 1.0, 1.0, 1.0), KINDS[kind]):
        p99_x, p50_x, err_x, cpu_x = factors
        for metric, centre, spread in (
            ("latency_p99", p99 * p99_x, 0.08),
            ("latency_p50", p50 * p50_x, 0.06),
            ("cpu_cores", cpu * cpu_x, 0.10),
        ):
            sides.setdefault(metric, []).append(np.round(rng.lognormal(np.log(centre), spread, n), 4))
        requests = rng.poisson(300, n)
        errors = rng.binomial(requests, min(error_rate * err_x, 1.0))
        sides.setdefault("error_ratio", []).append(np.column_stack([errors, requests]).astype(np.float64))
    return {metric: (pair[0], pair[1]) for metric, pair in sides.items()}


def samples_frame(samples: dict[str, tuple[np.ndarray, np.ndarray]], finished_at: datetime) -> pd.DataFrame:
    """`samples` in the CSV layout `gatewatch canary judge --data` and gate policies read:
    metric, group, timestamp, value (good and total for proportions)."""
    parts, stamps_of = [], {}
    for metric, pair in samples.items():
        for group, values in zip(("baseline", "canary"), pair):
            if len(values) not in stamps_of:
                stamps_of[len(values)] = _stamps(finished_at, CANARY_STEP, len(values))
            stamps = stamps_of[len(values)]
            if values.ndim == 2:
                parts.append(
                    pd.DataFrame(
                        {
                            "metric": metric,
                            "group": group,
                            "timestamp": stamps,
                            "good": values[:, 0].astype(int),
                            "total": values[:, 1].astype(int),
                        }
                    )
                )
            else:
                parts.append(pd.DataFrame({"metric": metric, "group": group, "timestamp": stamps, "value": values}))
    frame = pd.concat(parts, ignore_index=True)[["metric", "group", "timestamp", "value", "good", "total"]]
    return frame.astype({"good": "Int64", "total": "Int64"})
