"""On-call: what needs a person now, newest first, each with its age. Burn-rate alerts on the SLIs'
newest data (stale data said so), failing and running pipelines with their current stage, approvals
waiting, failed or marginal canaries, gate holds and rollbacks, rollbacks in progress, open incidents
with their linked deployment, notifications that failed; counters that turn red; refreshed every 30 s
unless turned off."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard import data, slo_data
from dashboard.common import config, filters, require_data, store_url
from gatewatch import api

REFRESH = "30s"
NEEDS_A_PERSON = "needs a person"
BURN_COLUMNS = (
    "age",
    "service",
    "slo",
    "severity",
    "long_window",
    "short_window",
    "long_burn_rate",
    "short_burn_rate",
    "threshold",
    "stale",
    "as_of",
)


@dataclass(frozen=True)
class Section:
    """One list of the page: its counter's label, its heading, the key of its rows, the columns shown
    and what an empty list says; `count` what its counter counts (every row unless said). A new list
    is one more entry in SECTIONS (and its rows in `lists`)."""

    counter: str
    title: str
    key: str
    columns: tuple[str, ...]
    empty: str
    count: Callable[[pd.DataFrame], int] = len


SECTIONS = (
    Section(
        "Failing pipelines",
        "Failing and running pipeline executions",
        "runs",
        ("age", "service", "pipeline", "status", "stage", "stage_status", "stuck", "revision", "url", "id"),
        "No pipeline is failing or running.",
        lambda runs: int(runs["status"].eq("failed").sum()),
    ),
    Section(
        "Approvals waiting",
        "Manual approvals waiting",
        "approvals",
        ("age", "service", "pipeline", "stage", "action", "revision", "url", "run_id"),
        "No approval is waiting.",
    ),
    Section(
        "Rollbacks in progress",
        "Rollbacks in progress",
        "rolling_back",
        ("age", "service", "environment", "status", "rollback_of", "version", "url", "id"),
        "No rollback in progress.",
    ),
    Section(
        "Holds and rollbacks (24 h)",
        "Gate holds and rollbacks (last 24 h)",
        "decisions",
        ("age", "service", "gate", "decision", "reason", "deployment_id", "key"),
        "No gate held or rolled back in the last 24 h.",
    ),
    Section(
        "Canary fail or marginal",
        "Failed or marginal canary runs",
        "canaries",
        ("age", "service", "verdict", "score", "deployment_id", "id"),
        "No canary run failed or was marginal.",
    ),
    Section(
        "Open incidents",
        "Open incidents",
        "incidents",
        (
            "age",
            "service",
            "severity",
            "status",
            "title",
            "linked_deployment",
            "deployment_status",
            "deployment_finished_at",
            "url",
            "id",
        ),
        "No open incidents.",
    ),
    Section(
        "Notifications failed",
        "Notifications that failed",
        "notifications",
        ("age", "service", "event", "channel", "severity", "summary", "error", "attempts", "decision_id"),
        "No notification failed.",
    ),
)


def counter(column, label: str, count: int | None) -> None:
    """A count that turns red when something needs a person ("n/a" when it cannot be counted)."""
    column.metric(
        label,
        "n/a" if count is None else count,
        delta=NEEDS_A_PERSON if count else None,
        delta_color="red",
        delta_arrow="off",
        border=True,
    )


def table(frame: pd.DataFrame, columns: tuple[str, ...], empty: str, runbooks: dict[str, str]) -> None:
    if frame.empty:
        st.success(empty)
        return
    shown = frame[[c for c in columns if c in frame]]
    if runbooks and "service" in shown:
        shown = shown.assign(runbook=shown["service"].map(runbooks))
    links = {c: st.column_config.LinkColumn(c) for c in ("url", "runbook") if c in shown}
    st.dataframe(shown, hide_index=True, width="stretch", column_config=links)


def burn_rate_section(alerts: dict | None, runbooks: dict[str, str]) -> None:
    """Alerts firing on the newest data; stale data is shown as stale, never as nothing firing."""
    st.subheader("Burn-rate alerts firing")
    if alerts is None:
        st.info(slo_data.NO_SLOS)
        return
    for problem in alerts["errors"]:
        st.warning(f"SLO not read: {problem}")
    firing, stale = alerts["firing"], alerts["stale"]
    if not stale.empty:
        st.warning(
            f"SLI data stopped for {len(stale)} SLO(s): alerts are judged on each SLI's newest point, "
            "which is too old to tell what is happening now."
        )
    if not firing.empty:
        table(firing, BURN_COLUMNS, "", runbooks)
    elif stale.empty and not alerts["errors"]:
        st.success("No burn-rate alert is firing.")
    if not stale.empty:
        st.caption("SLOs whose data stopped")
        table(stale, ("age", "service", "slo", "newest", "note"), "", runbooks)


def draw(now: datetime) -> None:
    f = filters()
    since = data.since_for_oncall(f.window, now)
    runbooks = dict(config().runbooks)
    folder = slo_data.folder()
    alerts = slo_data.burn_alerts(folder, f.service, f.team, now) if folder else None
    lists = data.oncall_board(store_url(), since, f.service, f.team, f.environment, now)
    st.caption(
        f"As of {now:%Y-%m-%d %H:%M} UTC; failures, canaries and rollbacks since {since:%Y-%m-%d}; " + f.caption()
    )
    runs = lists["runs"]
    counts: list[tuple[str, int | None]] = [
        ("Burn-rate alerts firing", None if alerts is None else len(alerts["firing"])),
        ("Stale SLIs", None if alerts is None else len(alerts["stale"])),
        ("Stuck executions", int(runs["stuck"].eq(True).sum()) if "stuck" in runs else 0),
        *((s.counter, s.count(lists[s.key])) for s in SECTIONS),
    ]
    for start in range(0, len(counts), 5):
        for column, (label, count) in zip(st.columns(5), counts[start : start + 5]):
            counter(column, label, count)

    burn_rate_section(alerts, runbooks)
    for section in SECTIONS:
        st.subheader(section.title)
        table(lists[section.key], section.columns, section.empty, runbooks)

    with st.expander(f"Deployments in progress ({len(lists['active_deployments'])})"):
        table(
            lists["active_deployments"],
            ("service", "environment", "status", "version", "started_at", "url", "id"),
            "No deployment in progress.",
            runbooks,
        )
    with st.expander(f"Finished rollbacks since {since:%Y-%m-%d} ({len(lists['rollbacks'])})"):
        table(
            lists["rollbacks"].head(20),
            ("service", "environment", "status", "finished_at", "rollback_of", "version", "url", "id"),
            "No rollbacks.",
            runbooks,
        )
    st.subheader("Runbooks")
    if runbooks:
        shown = {s: u for s, u in sorted(runbooks.items()) if not f.service or s == f.service}
        st.markdown("\n".join(f"- **{s}**: [{u}]({u})" for s, u in shown.items()) or "No runbook for this service.")
    else:
        st.caption("No runbooks configured: add `runbooks: {service: URL}` to gatewatch.yaml.")


st.title("On-call")
if require_data():
    refresh = st.toggle("Auto-refresh every 30 s", value=True, key="oncall_refresh")

    @st.fragment(run_every=REFRESH if refresh else None)
    def board() -> None:
        draw(api.utcnow().replace(second=0, microsecond=0))

    board()
