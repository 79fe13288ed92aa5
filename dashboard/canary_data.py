"""The canary page's cached queries: the runs list and one stored run's report (kept apart from
`dashboard.data` so the other pages do not import the statistics stack)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from gatewatch import api

from .common import TTL, engine


@st.cache_data(ttl=TTL, show_spinner=False)
def canary_runs(url: str, start: datetime, end: datetime, service: str | None, team: str | None) -> pd.DataFrame:
    return api.canary_runs_between(engine(url), start, end, api.Scope(service=service, team=team))


@st.cache_data(ttl=TTL, show_spinner=False)
def canary_report(url: str, run_id: str) -> dict[str, Any] | None:
    """One stored run: its result, and per metric the tolerance band and binned samples of both sides."""
    return api.canary_report(engine(url), run_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def canary_sequence(url: str, key: str) -> dict[str, Any] | None:
    """A sequential canary: its state and, per look and metric, the anytime-valid interval and bands."""
    return api.canary_sequence(engine(url), key)
