"""Telemetry for the canary judge: Prometheus-compatible servers, and CSV files for offline use."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.canary import samples_from_frame

from ..errors import ConfigError


@dataclass
class Telemetry:
    """Samples per metric (baseline, canary), why a metric has none, and the queries that were run.

    `unavailable` names the metrics whose source could not be read at all (a subset of `errors`): an
    outage, as opposed to a series that is simply missing."""

    samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    queries: dict[str, dict] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)


def from_csv(path: str | Path) -> Telemetry:
    """Samples from a CSV file: metric, group (baseline|canary), value [, timestamp] (good, total for
    proportions)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--data {str(path)!r}: no such file")
    try:
        frame = pd.read_csv(file)
        return Telemetry(samples=samples_from_frame(frame))
    except (ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


__all__ = ["Telemetry", "from_csv"]
