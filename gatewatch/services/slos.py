"""SLOs: SLO files, an SLO's status (SLI, error budget, burn-rate alerts) and burn-down, read with the
configured Prometheus credentials, and the overview of a folder of SLOs that the dashboard shows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.slo import SloSpec, SloStatus
from collector.config import Config
from collector.telemetry import sli
from gatewatch.errors import GatewatchError

__all__ = ["budget_history", "load_slo", "load_slos", "slo_overview", "slo_status"]


def load_slo(path: str | Path) -> SloSpec:
    """An SLO file; paths inside it are relative to it. SloError names the file and the field."""
    return sli.load_slo(path)


def load_slos(folder: str | Path) -> list[SloSpec]:
    """Every SLO file (`*.yaml`, `*.yml`) of a folder, by file name."""
    return sli.load_slos(folder)


def slo_status(config: Config, spec: SloSpec, at: datetime) -> SloStatus:
    """The SLO's SLI, error budget and multiwindow burn-rate alerts at `at`; SourceUnavailable when its
    SLI cannot be read (the server or the data file)."""
    return sli.slo_status(spec, at, config.prometheus)


def budget_history(config: Config, spec: SloSpec, start: datetime, end: datetime, points: int = 48) -> pd.DataFrame:
    """The error budget's burn-down from `start` to `end` (columns at, sli, budget_remaining)."""
    return sli.budget_history(spec, start, end, points, config.prometheus)


def slo_overview(
    config: Config,
    folder: str | Path,
    service: str | None,
    at: datetime,
    history_start: datetime | None = None,
    points: int = 48,
) -> dict[str, Any]:
    """Every SLO of `folder` (of `service` when given) at `at`: {"slos": [{name, service, status (as
    `to_dict`), firing alerts, budget history since `history_start`, note} or {name, service, error}],
    "error": why the folder could not be read}. One SLO that cannot be read does not hide the others.
    An SLO whose data stopped before `at` is shown as of its newest point, with a `note` saying so."""
    try:
        specs = load_slos(folder)
    except GatewatchError as exc:
        return {"slos": [], "error": str(exc)}
    out = []
    for spec in specs:
        if service and spec.service != service:
            continue
        item: dict[str, Any] = {"name": spec.name, "service": spec.service, "error": None, "note": None}
        try:
            state = slo_status(config, spec, at)
            if state.stale and state.newest is not None and state.newest < at:
                # Shown as of the SLI's newest point, and said so (a gate holds on such data instead).
                item["note"] = (
                    f"{state.stale.removeprefix('stale: ')}: the figures are as of the SLI's newest point, "
                    f"{state.newest:%Y-%m-%d %H:%M} UTC"
                )
                state = slo_status(config, spec, state.newest)
            history = (
                budget_history(config, spec, history_start, at, points)
                if history_start and history_start < at
                else pd.DataFrame(columns=["at", "sli", "budget_remaining"])
            )
        except GatewatchError as exc:  # an SLI file missing or a server down: say so for this SLO only
            out.append(item | {"error": str(exc)})
            continue
        out.append(
            item | {"status": state.to_dict(), "firing": [a.to_dict() for a in state.firing], "history": history}
        )
    return {"slos": out, "error": None}
