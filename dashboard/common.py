"""What every dashboard page shares: the store and configuration, the global sidebar filters, the
empty-store notice and display formatting. Pages only read and present."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import streamlit as st
from sqlalchemy import Engine

from gatewatch import api

TTL = 60  # seconds a cached query stays fresh: new events show within a minute
PAST_TTL = 900  # a past period's figures (the executive page's comparison): late events show within 15 min
RANGES = {
    "Last 7 days": 7,
    "Last 14 days": 14,
    "Last 30 days": 30,
    "Last 90 days": 90,
    "Last 180 days": 180,
    "Last 365 days": 365,
    "Custom dates": None,
}
DEFAULT_RANGE = "Last 90 days"
ALL = "All"
PRODUCTION = "Production (configured)"
TZ = "UTC"
GET_DATA_IN = """\
**The store is empty.** Get data in with one of:

- `gatewatch demo`: a realistic demo organisation (8 services, 90 days) in a few seconds;
- `gatewatch ingest FILE...`: your own events (CodePipeline EventBridge, GitHub, GitLab, PagerDuty or the
  generic JSON/CSV format);
- `gatewatch serve`: receive webhooks, or `gatewatch collect codepipeline` to backfill AWS history.

Then reload this page (the store is `{url}`)."""
OLD_SCHEMA = (
    "The store's schema is at revision `{current}`; this version of Gatewatch reads `{head}`. Run "
    "`gatewatch db upgrade` (the dashboard only reads, so it never changes the store)."
)


@dataclass(frozen=True)
class Filters:
    """The global sidebar filters: a window of whole UTC days and a scope."""

    window: api.Window
    service: str | None
    team: str | None
    environment: str | None  # None: every environment configured as production

    @property
    def scope(self) -> api.Scope:
        return api.Scope(service=self.service, team=self.team, environment=self.environment)

    @property
    def previous(self) -> api.Window:
        """The period of equal length just before the window."""
        span = self.window.end - self.window.start
        return api.Window(self.window.start - span, self.window.start, self.window.tz)

    def caption(self) -> str:
        last = (self.window.end - timedelta(days=1)).date()
        scope = [
            f"service {self.service}" if self.service else None,
            f"team {self.team}" if self.team else None,
            f"environment {self.environment}" if self.environment else "production",
        ]
        return f"{self.window.start:%Y-%m-%d} to {last:%Y-%m-%d} ({TZ}), " + ", ".join(s for s in scope if s)


@st.cache_resource
def _config(cwd: str) -> api.Config:
    return api.load_config()


def config() -> api.Config:
    """The configuration (GATEWATCH_CONFIG, else ./gatewatch.yaml, else defaults; the store from
    GATEWATCH_DB, which `gatewatch --db` sets)."""
    return _config(os.getcwd())


def store_url() -> str:
    """The store this dashboard reads."""
    return config().store_url


def engine(url: str) -> Engine:
    """The store's engine, never migrated here: the dashboard only reads (a read-only role works)."""
    return api.open_store(url, migrate=False)


@st.cache_data(ttl=TTL, show_spinner=False)
def store_counts(url: str) -> dict[str, int]:
    return api.store_counts(engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def schema(url: str) -> tuple[str | None, str]:
    return api.schema_revision(engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def filter_options(url: str) -> dict[str, list[str]]:
    return api.filter_options(engine(url))


# The sidebar's filters in the URL's query string (a view can be shared and survives a reload):
# session-state key -> query parameter.
URL_PARAMS = {
    "f_range": "range",
    "f_start": "from",
    "f_end": "to",
    "f_service": "service",
    "f_team": "team",
    "f_env": "env",
}
RANGE_PARAMS = {label: f"{days}d" if days else "custom" for label, days in RANGES.items()}


def _from_url(options: dict[str, list[str]]) -> None:
    """Once per session (a new tab, a shared link, a reload): the filters the URL names, where valid."""
    if st.session_state.get("gw_url_read"):
        return
    st.session_state["gw_url_read"] = True
    query = st.query_params
    ranges = {param: label for label, param in RANGE_PARAMS.items()}
    if query.get("range") in ranges:
        st.session_state["f_range"] = ranges[query["range"]]
    for key in ("f_start", "f_end"):
        try:
            st.session_state[key] = date.fromisoformat(query[URL_PARAMS[key]])
        except (KeyError, ValueError):
            pass
    for key, choices in (("f_service", "services"), ("f_team", "teams"), ("f_env", "environments")):
        if query.get(URL_PARAMS[key]) in options[choices]:
            st.session_state[key] = query[URL_PARAMS[key]]


def _to_url(values: dict[str, str | None]) -> None:
    """Write the chosen filters (None: the default, left out) to the query string, leaving other
    parameters alone."""
    for key, value in values.items():
        param = URL_PARAMS[key]
        if value is None:
            if param in st.query_params:
                del st.query_params[param]
        elif st.query_params.get(param) != value:
            st.query_params[param] = value


def _choice(label: str, options: list[str], key: str, first: str = ALL) -> str | None:
    values = [first, *options]
    if st.session_state.get(key) not in values:
        st.session_state.pop(key, None)
    value = st.sidebar.selectbox(label, values, key=key)
    return None if value == first else value


def sidebar() -> Filters:
    """Draw the global filters in the sidebar and return them (pages read them with `filters()`); they
    are read from and written to the URL's query string."""
    url = store_url()
    options = filter_options(url)
    _from_url(options)
    st.sidebar.header("Filters")
    st.session_state.setdefault("f_range", DEFAULT_RANGE)
    chosen = st.sidebar.selectbox("Time range", list(RANGES), key="f_range")
    days = RANGES[chosen]
    dates: dict[str, str | None] = {"f_start": None, "f_end": None}
    if days is None:
        today = api.utcnow().date()
        st.session_state.setdefault("f_start", today - timedelta(days=29))
        st.session_state.setdefault("f_end", today)
        first = st.sidebar.date_input("From", key="f_start")
        last = st.sidebar.date_input("To (included)", key="f_end")
        if not isinstance(first, date) or not isinstance(last, date) or last < first:
            st.sidebar.error("'To' must be on or after 'From'; showing the last 30 days.")
            window = api.window_since(30, api.utcnow(), TZ)
        else:
            window = api.window_between(first, last + timedelta(days=1), TZ)
            dates = {"f_start": first.isoformat(), "f_end": last.isoformat()}
    else:
        window = api.window_since(days, api.utcnow(), TZ)
    service = _choice("Service", options["services"], "f_service")
    team = _choice("Team", options["teams"], "f_team")
    environment = _choice("Environment", options["environments"], "f_env", first=PRODUCTION)
    st.sidebar.caption(f"Whole days in {TZ}; queries are cached for {TTL} s. The address holds these filters.")
    _to_url(
        {
            "f_range": None if chosen == DEFAULT_RANGE else RANGE_PARAMS[chosen],
            **dates,
            "f_service": service,
            "f_team": team,
            "f_env": environment,
        }
    )
    current = Filters(window, service, team, environment)
    st.session_state["gw_filters"] = current
    return current


def filters() -> Filters:
    """The filters the sidebar set on this run."""
    return st.session_state["gw_filters"]


def require_data(*tables: str) -> bool:
    """False (after showing how to get data in) when the store, or every one of `tables`, is empty."""
    url = store_url()
    counts = store_counts(url)
    if not any(counts.values()):
        st.info(GET_DATA_IN.format(url=api.describe_store(url)))
        return False
    current, head = schema(url)
    if current != head:
        st.warning(OLD_SCHEMA.format(current=current, head=head))
        return False
    return not tables or any(counts.get(t) for t in tables)


def hours(value: float | None) -> str:
    """Hours as the dashboard shows them (two decimals, as exact as a glance needs)."""
    return "no data" if value is None else f"{value:.2f} h"


def pct(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.1f}%"


Colour = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray"]
TIER_COLOURS: dict[str, Colour] = {"elite": "green", "high": "blue", "medium": "orange", "low": "red"}


def badge(label: str | None, colours: dict[str, Colour], missing: str = "none") -> None:
    """A coloured badge for a tier, verdict or decision (gray for anything else)."""
    st.badge(label or missing, color=colours.get(label or "", "gray"))


def tier_badge(tier: str | None) -> None:
    badge(tier, TIER_COLOURS, missing="no tier")
