"""Canary telemetry from any Prometheus-compatible server (Prometheus, Thanos, Mimir, VictoriaMetrics)
through prometheus-api-client's range queries. A server that cannot be read makes every affected
metric `nodata` with the error: missing telemetry never passes a canary."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from analysis.canary import CanaryConfig, MetricSpec
from gatewatch.errors import ConfigError, SourceUnavailable

from ..config import Prometheus
from ..redaction import mask_url, remember, remember_url_credentials, scrub
from .samples import Telemetry
from .scopes import render_query

log = logging.getLogger(__name__)


def connect(url: str, auth: Prometheus | None = None, timeout: float = 10.0) -> Any:
    """A PrometheusConnect with `auth`'s bearer token or basic auth (the configuration's
    GATEWATCH_PROMETHEUS_TOKEN, else _USER/_PASSWORD; never logged) and a short retry budget, so a
    server that is down is reported in about a second rather than after the client's default backoff."""
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    remember_url_credentials(url)  # a URL's user:password@ or ?token= is never shown: scrubbed, masked
    if auth:
        remember(auth.token)
        remember(auth.password)
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


_KINDS = {"matrix": "a range vector", "vector": "an instant vector", "scalar": "a scalar", "string": "a string"}


def _api(client: Any, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """One call of the HTTP API through the client's session (its auth, retries and timeout): the `data`
    of a `success` answer; anything else is SourceUnavailable in plain words."""
    response = client._session.request(  # the client's own session; the client discards the envelope
        method="GET",
        url=f"{client.url}/api/v1/{path}",
        params=params,
        headers=client.headers,
        auth=client.auth,
        verify=client._session.verify,
        timeout=client._timeout,
    )
    try:
        body = response.json()
    except ValueError:
        raise SourceUnavailable(f"answered HTTP {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
        status = body.get("status") if isinstance(body, dict) else None
        detail = f"{body.get('errorType') or ''} {body.get('error') or ''}" if isinstance(body, dict) else body
        raise SourceUnavailable(
            f"answered HTTP {response.status_code} with status {status!r}: "
            f"{str(detail).strip()[:300] or 'no error message'}"
        )
    return body["data"]


def _result(data: dict[str, Any], expected: str) -> list[dict[str, Any]]:
    """The result of an answer of the type `expected` (matrix or vector), float samples only."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind != expected or not isinstance(result, list):
        raise SourceUnavailable(f"query returned {_KINDS.get(str(kind), repr(kind))}; expected {_KINDS[expected]}")
    key = "values" if expected == "matrix" else "value"
    for series in result:
        if not isinstance(series, dict) or key not in series:
            if isinstance(series, dict) and ("histograms" in series or "histogram" in series):
                raise SourceUnavailable(
                    "query returned native histogram samples; expected float samples (use "
                    "histogram_quantile() or a _count/_sum series)"
                )
            raise SourceUnavailable(f"query returned a series without {key!r}; expected {_KINDS[expected]}")
    return result


def range_query(client: Any, query: str, start: datetime, end: datetime, step: str) -> list[dict[str, Any]]:
    """The series of a range query over [start, end] at `step`; SourceUnavailable when the server
    refuses or answers with anything but a range vector of float samples."""
    data = _api(
        client,
        "query_range",
        {"query": query, "start": round(start.timestamp()), "end": round(end.timestamp()), "step": step},
    )
    return _result(data, "matrix")


def instant_query(client: Any, query: str, at: datetime) -> list[dict[str, Any]]:
    """The series of an instant query at `at`; SourceUnavailable as for `range_query`."""
    return _result(_api(client, "query", {"query": query, "time": f"{at.timestamp():.3f}"}), "vector")


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
        return range_query(client, promql, start, end, step_text)

    for spec in config.metrics:
        try:
            if spec.test == "proportion":
                goods, totals = [], []
                for scope in (baseline_scope, canary_scope):
                    goods.append(_series_values(query(spec, spec.good_query, scope, "good_query")))
                    totals.append(_series_values(query(spec, spec.total_query, scope, "total_query")))
                if not any(goods) and any(totals):
                    telemetry.errors[spec.name] = (
                        "good_query matched no series on either side; if none is expected (no errors at all), "
                        "end the query with `or vector(0)`"
                    )
                    continue
                # A timestamp with a total and no good series counts 0 good: a sum() over no matching
                # series (no 5xx that minute) is absent, not zero, in PromQL.
                baseline, canary = (
                    np.array([[good.get(t, 0.0), total[t]] for t in sorted(total)], dtype=np.float64).reshape(-1, 2)
                    for good, total in zip(goods, totals)
                )
            else:
                baseline = _samples(query(spec, spec.query, baseline_scope, "query"))
                canary = _samples(query(spec, spec.query, canary_scope, "query"))
        except ConfigError:
            raise
        except SourceUnavailable as exc:  # it answered, but not with what was asked: said plainly
            telemetry.errors[spec.name] = scrub(f"Prometheus at {mask_url(url)}: {exc}")
            telemetry.unavailable.add(spec.name)
            log.warning("canary metric %s: %s", spec.name, telemetry.errors[spec.name])
            continue
        except Exception as exc:
            telemetry.errors[spec.name] = scrub(
                f"Prometheus at {mask_url(url)} could not be read: {exc.__class__.__name__}: "
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
