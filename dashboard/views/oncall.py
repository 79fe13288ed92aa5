"""On-call: what needs a person now. Stuck or failing pipeline executions, deployments in progress,
recent rollbacks, SLO burn-rate alerts firing, open incidents with their linked deployment, runbooks."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, slo_data
from dashboard.common import config, filters, require_data, store_url
from gatewatch import api

st.title("On-call")
f = filters()
now = api.utcnow()
since = data.since_for_oncall(f.window, now)
st.caption(f"Now: {now:%Y-%m-%d %H:%M} UTC; failures and rollbacks since {since:%Y-%m-%d}; " + f.caption())
runbooks = dict(config().runbooks)


def with_runbook(frame: pd.DataFrame) -> pd.DataFrame:
    if runbooks and "service" in frame:
        return frame.assign(runbook=frame["service"].map(runbooks))
    return frame


def table(frame: pd.DataFrame, columns: list[str], empty: str) -> None:
    if frame.empty:
        st.success(empty)
        return
    shown = with_runbook(frame[[c for c in columns if c in frame]])
    config_ = {c: st.column_config.LinkColumn(c) for c in ("url", "runbook") if c in shown}
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config_)


if require_data():
    work = data.open_work(store_url(), since, f.service, f.team, f.environment, now.replace(second=0, microsecond=0))
    active, failing = work["active_runs"], work["failing_runs"]
    stuck = active[active["stuck"]]
    firing, slo_errors, slo_notes = slo_data.firing_alerts(f.service, now.replace(second=0, microsecond=0))
    cols = st.columns(5)
    cols[0].metric("Stuck executions", len(stuck))
    cols[1].metric("Failing pipelines", len(failing))
    cols[2].metric("Deployments in progress", len(work["active_deployments"]))
    cols[3].metric("Burn-rate alerts firing", "n/a" if firing is None else len(firing))
    cols[4].metric("Open incidents", len(work["open_incidents"]))

    st.subheader("Pipeline executions running longer than their pipeline's p90")
    st.caption(
        "p90 of the pipeline's finished executions since the date above; every running execution is listed "
        "under 'All running'."
    )
    table(
        stuck,
        ["service", "pipeline", "status", "running_hours", "p90_hours", "started_at", "revision", "url", "id"],
        "Nothing stuck.",
    )
    with st.expander(f"All running ({len(active)})"):
        table(
            active,
            ["service", "pipeline", "status", "running_hours", "p90_hours", "stuck", "started_at", "id"],
            "Nothing running.",
        )
    st.subheader("Failing pipelines (latest finished execution failed)")
    table(failing, ["service", "pipeline", "finished_at", "revision", "url", "id"], "No pipeline is failing.")
    st.subheader("Deployments in progress")
    table(
        work["active_deployments"],
        ["service", "environment", "status", "version", "started_at", "url", "id"],
        "No deployment in progress.",
    )
    st.subheader("Recent rollbacks")
    table(
        work["rollbacks"].head(20),
        ["service", "environment", "status", "finished_at", "rollback_of", "version", "url", "id"],
        "No rollbacks.",
    )
    st.subheader("SLO burn-rate alerts firing")
    for problem in slo_errors:
        st.warning(f"SLO not read: {problem}")
    for note in slo_notes:
        st.warning(f"SLI data stopped: {note}")
    if firing is None:
        st.info(slo_data.NO_SLOS)
    else:
        table(
            firing,
            [
                "service",
                "slo",
                "as_of",
                "severity",
                "long_window",
                "short_window",
                "long_burn_rate",
                "short_burn_rate",
                "threshold",
            ],
            "No burn-rate alert is firing.",
        )
    st.subheader("Open incidents")
    table(
        work["open_incidents"],
        [
            "service",
            "severity",
            "status",
            "title",
            "opened_at",
            "deployment_id",
            "deployment_status",
            "deployment_finished_at",
            "url",
            "id",
        ],
        "No open incidents.",
    )
    st.subheader("Runbooks")
    if runbooks:
        shown = {s: u for s, u in sorted(runbooks.items()) if not f.service or s == f.service}
        st.markdown("\n".join(f"- **{s}**: [{u}]({u})" for s, u in shown.items()) or "No runbook for this service.")
    else:
        st.caption("No runbooks configured: add `runbooks: {service: URL}` to gatewatch.yaml.")
