"""Canary telemetry from any Prometheus-compatible server (Prometheus, Thanos, Mimir, VictoriaMetrics)
through prometheus-api-client's range queries. A server that cannot be read makes every affected
metric `nodata` with the error: missing telemetry never passes a canary."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from analysis.canary import CanaryConfig, MetricSpec
from gatewatch.errors import ConfigError

from ..config import Prometheus
from .samples import Telemetry
from .scopes import render_query

log = logging.getLogger(__name__)


def connect(url: str, auth: Prometheus | None = None, timeout: float = 10.0) -> Any:
    """A PrometheusConnect with `auth`'s bearer token or basic auth (the configuration's
    GATEWATCH_PROMETHEUS_TOKEN, else _USER/_PASSWORD; never logged) and a short retry budget, so a
    server that is down is reported in about a second rather than after the client's default backoff."""
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    retry = Retry(total=2, backoff_factor=0.25, status_forcelist=[429, 502, 503, 504], allowed_methods=["GET"])
    headers = auth.headers if auth else None
    return PrometheusConnect(
        url=url.rstrip("/"),
        headers=headers,
        disable_ssl=False,
        auth=auth.basic_auth if auth and not headers else None,
        timeout=timeout,
        retry=retry,
    )


def _series_values(result: list[dict[str, Any]]) -> dict[float, float]:
    """timestamp -> value over every series of a range query result (values arrive as strings)."""
    out: dict[float, float] = {}
    for series in result:
        for stamp, value in series.get("values", []):
            number = float(value)
            if np.isfinite(number):
                out[float(stamp)] = out.get(float(stamp), 0.0) + number  # several series: their sum
    return out


def _samples(result: list[dict[str, Any]]) -> np.ndarray:
    """Every finite sample of every series."""
    values = [float(v) for series in result for _, v in series.get("values", [])]
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def fetch(
    config: CanaryConfig,
    url: str,
    baseline_scope: str,
    canary_scope: str,
    start: datetime,
    end: datetime,
    step: timedelta = timedelta(seconds=30),
    auth: Prometheus | None = None,
    timeout: float = 10.0,
) -> Telemetry:
    """Baseline and canary samples of every metric in `config` over [start, end] at `step`."""
    telemetry = Telemetry()
    client = connect(url, auth, timeout)
    step_text = f"{step.total_seconds():g}s"

    def query(spec: MetricSpec, template: str | None, scope: str, what: str) -> list[dict[str, Any]]:
        if not template:
            raise ConfigError(f"metric {spec.name!r}: {what} is required to read Prometheus")
        promql = render_query(template, scope)
        telemetry.queries.setdefault(spec.name, {})[f"{what}@{scope}"] = promql
        return client.custom_query_range(promql, start_time=start, end_time=end, step=step_text)

    for spec in config.metrics:
        try:
            if spec.test == "proportion":
                sides = []
                for scope in (baseline_scope, canary_scope):
                    good = _series_values(query(spec, spec.good_query, scope, "good_query"))
                    total = _series_values(query(spec, spec.total_query, scope, "total_query"))
                    stamps = sorted(set(good) & set(total))
                    sides.append(np.array([[good[t], total[t]] for t in stamps], dtype=np.float64).reshape(-1, 2))
                baseline, canary = sides
            else:
                baseline = _samples(query(spec, spec.query, baseline_scope, "query"))
                canary = _samples(query(spec, spec.query, canary_scope, "query"))
        except ConfigError:
            raise
        except Exception as exc:
            telemetry.errors[spec.name] = (
                f"Prometheus at {url} could not be read: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"
            )
            telemetry.unavailable.add(spec.name)
            log.warning("canary metric %s: %s", spec.name, telemetry.errors[spec.name])
            continue
        missing = [name for name, values in (("baseline", baseline), ("canary", canary)) if len(values) == 0]
        if missing:
            scopes = {"baseline": baseline_scope, "canary": canary_scope}
            telemetry.errors[spec.name] = "no series for " + " and ".join(f"{m} scope {scopes[m]}" for m in missing)
            continue
        telemetry.samples[spec.name] = (baseline, canary)
    return telemetry
