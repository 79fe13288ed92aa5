"""SLO figures for the dashboard from the SLO files in `slos` (GATEWATCH_SLOS): status, burn rates per
window pair, and budget history, through the service API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from gatewatch import api

from .common import TTL, config

NO_SLOS = (
    "No SLOs configured: point `slos:` in gatewatch.yaml (or GATEWATCH_SLOS) at a folder of SLO files "
    "(`{service, objective: 99.9, window: 28d, sli: ...}`)."
)


@st.cache_data(ttl=TTL, show_spinner="Reading SLIs ...")
def statuses(
    folder: str,
    service: str | None,
    at: datetime,
    history_start: datetime | None = None,
    points: int = 48,
    team: str | None = None,
) -> dict[str, Any]:
    """{"slos": per SLO of `folder` (of `service` and `team` when given), least error budget left first, its
    name, service, team, status dict, firing alerts, budget and burn-rate histories, or the `error` reading
    it; "error": why the folder could not be read}."""
    return api.slo_overview(config(), folder, service, at, history_start, points, team=team)


def folder() -> str | None:
    return config().slos


def firing_alerts(service: str | None, at: datetime) -> tuple[pd.DataFrame | None, list[str], list[str]]:
    """Burn-rate alerts firing now (None when no SLO folder is configured; an SLO whose data stopped is
    shown as of its newest point, `as_of`), what could not be read, and the notes on stale data."""
    where = folder()
    if not where:
        return None, [], []
    found = statuses(where, service, at)
    rows = [
        {"service": s["service"], "slo": s["name"], "as_of": s["status"]["at"], **alert}
        for s in found["slos"]
        for alert in s.get("firing", [])
    ]
    errors = [found["error"]] if found["error"] else [f"{s['name']}: {s['error']}" for s in found["slos"] if s["error"]]
    notes = [f"{s['service']}/{s['name']}: {s['note']}" for s in found["slos"] if s.get("note")]
    return (
        pd.DataFrame(
            rows,
            columns=[
                "service",
                "slo",
                "as_of",
                "severity",
                "long_window",
                "short_window",
                "long_burn_rate",
                "short_burn_rate",
                "threshold",
                "firing",
            ],
        ),
        errors,
        notes,
    )
