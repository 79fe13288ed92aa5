"""SLO figures for the dashboard from the SLO files in `config.slos` (GATEWATCH_SLOS), read through
`collector.telemetry.sli`: status, burn rates per window pair, and budget history."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from collector.errors import GatewatchError
from collector.telemetry.sli import budget_history, load_slos, slo_status

from .common import TTL, config

NO_SLOS = ("No SLOs configured: point `slos:` in gatewatch.yaml (or GATEWATCH_SLOS) at a folder of SLO files "
           "(`{service, objective: 99.9, window: 28d, sli: ...}`).")


@st.cache_data(ttl=TTL, show_spinner="Reading SLIs ...")
def statuses(folder: str, service: str | None, at: datetime, history_start: datetime | None = None,
             points: int = 48) -> dict[str, Any]:
    """{"slos": per SLO of `folder` (of `service` when given) its name, service, status dict, firing alerts
    and budget history, or the `error` reading it; "error": why the folder could not be read}."""
    try:
        specs = load_slos(folder)
    except GatewatchError as exc:
        return {"slos": [], "error": str(exc)}
    out = []
    for spec in specs:
        if service and spec.service != service:
            continue
        item: dict[str, Any] = {"name": spec.name, "service": spec.service, "error": None}
        try:
            status = slo_status(spec, at)
            history = (budget_history(spec, history_start, at, points=points) if history_start and history_start < at
                       else pd.DataFrame(columns=["at", "sli", "budget_remaining"]))
        except GatewatchError as exc:  # an SLI file missing or a server down: say so for this SLO only
            out.append(item | {"error": str(exc)})
            continue
        out.append(item | {"status": status.to_dict(), "firing": [a.to_dict() for a in status.firing],
                           "history": history})
    return {"slos": out, "error": None}


def folder() -> str | None:
    return config().slos


def firing_alerts(service: str | None, at: datetime) -> tuple[pd.DataFrame | None, list[str]]:
    """Burn-rate alerts firing now (None when no SLO folder is configured), and what could not be read."""
    where = folder()
    if not where:
        return None, []
    found = statuses(where, service, at)
    rows = [{"service": s["service"], "slo": s["name"], **alert} for s in found["slos"] for alert in s.get("firing", [])]
    errors = [found["error"]] if found["error"] else [f"{s['name']}: {s['error']}" for s in found["slos"] if s["error"]]
    return pd.DataFrame(rows, columns=["service", "slo", "severity", "long_window", "short_window", "long_burn_rate",
                                       "short_burn_rate", "threshold", "firing"]), errors
