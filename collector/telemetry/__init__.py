"""Telemetry: a canary's samples (CSV files, Prometheus-compatible servers, CloudWatch) and the SLIs
of SLO files, read for `analysis` to judge."""

from __future__ import annotations

from datetime import datetime

from analysis.canary import CanaryConfig
from gatewatch.errors import ConfigError

from ..config import Prometheus
from .samples import CloudWatchSamples, CsvSamples, PrometheusSamples, SampleSource, Telemetry, from_csv

__all__ = [
    "CloudWatchSamples",
    "CsvSamples",
    "PrometheusSamples",
    "SampleSource",
    "Telemetry",
    "from_csv",
    "read_samples",
]


def read_samples(
    config: CanaryConfig, source: SampleSource, window: tuple[datetime, datetime] | None, auth: Prometheus | None = None
) -> Telemetry:
    """Baseline and canary samples of every metric of `config` from `source` over `window` [start, end]
    (a CSV file is read whole). A source that cannot be read makes its metrics `nodata`, never pass."""
    if isinstance(source, CsvSamples):
        return from_csv(source.path)
    if window is None:
        raise ConfigError(f"reading {source.kind}: a window [start, end] is required")
    if isinstance(source, PrometheusSamples):
        from . import prometheus

        return prometheus.fetch(
            config, source.url, source.baseline, source.canary, *window, step=source.step, auth=auth
        )
    from . import cloudwatch

    scopes = (
        cloudwatch.dimensions(source.baseline, f"{source.where}baseline"),
        cloudwatch.dimensions(source.canary, f"{source.where}canary"),
    )
    period = cloudwatch.period_seconds(source.period, f"{source.where}step")
    return cloudwatch.fetch(config, cloudwatch.connect(source.region), *scopes, *window, period)
