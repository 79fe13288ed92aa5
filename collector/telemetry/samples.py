"""A canary's samples and where they come from: a CSV file, a Prometheus-compatible server or
Amazon CloudWatch, each described by one source type (`collector.telemetry.read_samples` reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.canary import samples_from_frame
from gatewatch.errors import ConfigError

from ..textfiles import file_encoding, file_problem, read_problem

__all__ = ["CloudWatchSamples", "CsvSamples", "PrometheusSamples", "SampleSource", "Telemetry", "from_csv"]


@dataclass
class Telemetry:
    """Samples per metric (baseline, canary), why a metric has none, and the queries that were run.

    `unavailable` names the metrics whose source could not be read at all (a subset of `errors`): an
    outage, as opposed to a series that is simply missing."""

    samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    queries: dict[str, dict] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class CsvSamples:
    """Samples in a CSV file: metric, group (baseline|canary), value [, timestamp] (good, total for
    proportion metrics)."""

    path: Path
    kind = "csv"


@dataclass(frozen=True)
class PrometheusSamples:
    """Range queries to a Prometheus-compatible server, the scopes as label matchers (`version="v2"`)."""

    url: str
    baseline: str
    canary: str
    step: timedelta = timedelta(seconds=30)
    kind = "prometheus"


@dataclass(frozen=True)
class CloudWatchSamples:
    """GetMetricData over the metrics' `cloudwatch` settings, the scopes as extra dimensions."""

    baseline: str
    canary: str
    period: timedelta = timedelta(seconds=60)
    region: str | None = None
    where: str = ""  # how the settings are named in messages: "--" for the CLI's options
    kind = "cloudwatch"


SampleSource = CsvSamples | PrometheusSamples | CloudWatchSamples


def from_csv(path: str | Path) -> Telemetry:
    """Samples from a CSV file (see `CsvSamples`); ConfigError names the file and the problem."""
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"--data {str(path)!r}: {problem}")
    try:
        frame = pd.read_csv(path, encoding=file_encoding(path))
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{path}: {read_problem(exc)}") from None
    try:
        return Telemetry(samples=samples_from_frame(frame))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
