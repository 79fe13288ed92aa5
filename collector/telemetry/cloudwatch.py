"""Canary telemetry from Amazon CloudWatch `GetMetricData`: a metric's `cloudwatch` settings name the
namespace, metric and statistic; the baseline and canary scopes are extra dimensions.

```yaml
- name: latency
  cloudwatch: {namespace: MyApp, metric_name: Latency, stat: Average, dimensions: {Service: api}}
```
Errors (throttling, access, an unreachable endpoint) make the metric `nodata`, never pass.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import numpy as np

from analysis.canary import CanaryConfig

from ..errors import ConfigError
from . import Telemetry


def _query(query_id: str, spec: Mapping[str, Any], scope: Mapping[str, str], period: int) -> dict:
    dimensions = {**(spec.get("dimensions") or {}), **scope}
    return {"Id": query_id, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": spec["namespace"], "MetricName": spec["metric_name"],
                   "Dimensions": [{"Name": k, "Value": str(v)} for k, v in dimensions.items()]},
        "Period": int(spec.get("period", period)), "Stat": spec.get("stat", "Average")}}


def fetch(config: CanaryConfig, client, baseline: Mapping[str, str], canary: Mapping[str, str], start: datetime,
          end: datetime, period: int = 60) -> Telemetry:
    """Baseline and canary samples of every metric with `cloudwatch` settings over [start, end]."""
    telemetry = Telemetry()
    for index, metric in enumerate(config.metrics):
        spec = metric.cloudwatch
        if not spec:
            telemetry.errors[metric.name] = "no cloudwatch settings for this metric"
            continue
        missing = {"namespace", "metric_name"} - set(spec)
        if missing:
            raise ConfigError(f"metric {metric.name!r}: cloudwatch needs {sorted(missing)}")
        queries = [_query(f"m{index}b", spec, baseline, period), _query(f"m{index}c", spec, canary, period)]
        telemetry.queries[metric.name] = {"baseline": queries[0], "canary": queries[1]}
        values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
        try:
            token = None
            while True:
                kwargs = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
                if token:
                    kwargs["NextToken"] = token
                page = client.get_metric_data(**kwargs)
                for result in page.get("MetricDataResults", []):
                    values[result["Id"]].extend(float(v) for v in result.get("Values", []))
                token = page.get("NextToken")
                if not token:
                    break
        except Exception as exc:  # noqa: BLE001 - any AWS or network failure: no data, never pass
            telemetry.errors[metric.name] = f"CloudWatch could not be read: {exc.__class__.__name__}: {exc}"[:400]
            telemetry.unavailable.add(metric.name)
            continue
        b, c = (np.asarray(values[q["Id"]], dtype=np.float64) for q in queries)
        if b.size == 0 or c.size == 0:
            telemetry.errors[metric.name] = "no datapoints for the " + " and ".join(
                side for side, arr in (("baseline", b), ("canary", c)) if arr.size == 0) + " dimensions"
            continue
        telemetry.samples[metric.name] = (b, c)
    return telemetry
