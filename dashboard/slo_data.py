"""SLO figures for the dashboard from the SLO files in `slos` (GATEWATCH_SLOS): status, burn rates per
window pair, and budget history, through the service API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


@st.cache_data(ttl=TTL, show_spinner="Reading SLIs ...")
def burn_alerts(folder: str, service: str | None, team: str | None, now: datetime) -> dict[str, Any]:
    """Burn-rate alerts firing on each SLO's newest data, with its age; SLOs whose data stopped; what
    could not be read (`api.oncall_burn_alerts`)."""
    return api.oncall_burn_alerts(config(), folder, service, team, now)
