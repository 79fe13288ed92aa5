"""Canary telemetry from Amazon CloudWatch `GetMetricData`: a metric's `cloudwatch` settings name the
namespace, metric and statistic; the baseline and canary scopes are extra dimensions.

```yaml
- name: latency
  cloudwatch: {namespace: MyApp, metric_name: Latency, stat: Average, dimensions: {Service: api}}
```
Errors (throttling, access, missing credentials, an unreachable endpoint) make the metric `nodata`,
never pass. Credentials and region come from the standard AWS chain; `AWS_ENDPOINT_URL` (or
`AWS_ENDPOINT_URL_CLOUDWATCH`) points the client at another endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from analysis.canary import CanaryConfig, CloudWatchMetric
from gatewatch.errors import ConfigError
from gatewatch.schema import duration_label, parse_duration

from .samples import Telemetry
from .scopes import parse_scope

# GetMetricData periods: high resolution 1, 5, 10 or 30 s, else a multiple of a minute.
_HIGH_RESOLUTION = (1, 5, 10, 30)


def dimensions(scope: str | Mapping[str, str], what: str) -> dict[str, str]:
    """CloudWatch dimensions from a scope: equality matchers (`Version="v2"`) or a {name: value} mapping."""
    matchers = parse_scope(scope)
    other = [f"{label}{op}" for label, op, _ in matchers if op != "="]
    if other:
        raise ConfigError(
            f'{what}: CloudWatch dimensions match by equality only (Name="value"); not {", ".join(other)}'
        )
    return {label: value for label, _, value in matchers}


def period_seconds(step: str | timedelta, what: str = "step") -> int:
    """The GetMetricData period for a step such as 60s or 5m."""
    try:
        seconds = (step if isinstance(step, timedelta) else parse_duration(step)).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if seconds != int(seconds) or not (int(seconds) in _HIGH_RESOLUTION or (seconds >= 60 and seconds % 60 == 0)):
        shown = duration_label(step) if isinstance(step, timedelta) else step
        raise ConfigError(f"{what} {shown!r}: CloudWatch periods are 1, 5, 10 or 30 seconds or a multiple of 60 s")
    return int(seconds)


def connect(region: str | None = None) -> Any:
    """A CloudWatch client from the standard AWS credential and region chain."""
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import NoRegionError

    try:  # a session of its own: boto3's default session is not safe to share between threads
        return boto3.session.Session().client(
            "cloudwatch",
            region_name=region,
            config=BotoConfig(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20),
        )
    except NoRegionError:
        raise ConfigError(
            "CloudWatch: no AWS region; give --region (or region: in the policy) or set AWS_REGION"
        ) from None


def _query(query_id: str, spec: CloudWatchMetric, scope: Mapping[str, str], period: int) -> dict:
    dimensions = {**spec.dimensions, **scope}
    return {
        "Id": query_id,
        "ReturnData": True,
        "MetricStat": {
            "Metric": {
                "Namespace": spec.namespace,
                "MetricName": spec.metric_name,
                "Dimensions": [{"Name": k, "Value": str(v)} for k, v in dimensions.items()],
            },
            "Period": spec.period or period,
            "Stat": spec.stat,
        },
    }


def metric_data(
    client: Any, queries: list[dict], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    """Query id -> its (period start, value) points over [start, end), oldest first, every page read.
    Errors (throttling, access, an unreachable endpoint) are raised: the caller says what no data means."""
    points: dict[str, list[tuple[datetime, float]]] = {q["Id"]: [] for q in queries}
    token = None
    while True:
        kwargs = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
        if token:
            kwargs["NextToken"] = token
        page = client.get_metric_data(**kwargs)
        for result in page.get("MetricDataResults", []):
            stamps, values = result.get("Timestamps", []), result.get("Values", [])
            points[result["Id"]].extend((t, float(v)) for t, v in zip(stamps, values))
        token = page.get("NextToken")
        if not token:
            return points


def fetch(
    config: CanaryConfig,
    client: Any,
    baseline: Mapping[str, str],
    canary: Mapping[str, str],
    start: datetime,
    end: datetime,
    period: int = 60,
) -> Telemetry:
    """Baseline and canary samples of every metric with `cloudwatch` settings over [start, end]."""
    telemetry = Telemetry()
    for index, metric in enumerate(config.metrics):
        spec = metric.cloudwatch
        if not spec:
            telemetry.errors[metric.name] = "no cloudwatch settings for this metric"
            continue
        queries = [_query(f"m{index}b", spec, baseline, period), _query(f"m{index}c", spec, canary, period)]
        telemetry.queries[metric.name] = {"baseline": queries[0], "canary": queries[1]}
        try:
            values = {key: [v for _, v in points] for key, points in metric_data(client, queries, start, end).items()}
        except Exception as exc:
            telemetry.errors[metric.name] = f"CloudWatch could not be read: {exc.__class__.__name__}: {exc}"[:400]
            telemetry.unavailable.add(metric.name)
            continue
        b, c = (np.asarray(values[q["Id"]], dtype=np.float64) for q in queries)
        if b.size == 0 or c.size == 0:
            telemetry.errors[metric.name] = (
                "no datapoints for the "
                + " and ".join(side for side, arr in (("baseline", b), ("canary", c)) if arr.size == 0)
                + " dimensions"
            )
            continue
        telemetry.samples[metric.name] = (b, c)
    return telemetry
