"""Pipelines: deployment success and completion rates, time to rollback, merge to production, per
pipeline and stage success rate, duration breakdown, approval latency, flaky stages, and the slowest
recent executions with a drill-down to their stages and actions."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.common import filters, hours, pct, require_data, store_url

st.title("Pipelines")
f = filters()
st.caption(f.caption().replace(", production", "") + " (every environment unless one is chosen)")


def summary(label: str, stats: dict) -> str:
    return f"{label}: " + (
        "no data"
        if not stats["count"]
        else f"median {hours(stats['median_hours'])}, p90 {hours(stats['p90_hours'])} (n={stats['count']})"
    )


if require_data("pipeline_runs", "deployments"):
    w = f.window
    view = data.pipelines(store_url(), w.start, w.end, w.tz, f.service, f.team, f.environment)
    rep = view["report"]
    for warning in data.production_stage_warnings(store_url()):
        st.warning(warning)
    dep, runs = rep["deployments"], rep["pipeline_runs"]
    detection, rollback = rep["detection_to_rollback"], rep["time_to_rollback"]
    cols = st.columns(4)
    cols[0].metric(
        "Deployment success rate",
        pct(dep["success_rate"]),
        help=f"{dep['successful']} of {dep['attempted']} succeeded and were not rolled back",
    )
    cols[1].metric(
        "Deployment completion rate",
        pct(dep["completion_rate"]),
        help=f"{dep['completed']} of {dep['attempted']} completed; {dep['rolled_back']} rolled back",
    )
    cols[2].metric("Failed pipeline rate", pct(runs["failed_rate"]), help=f"{runs['failed']} of {runs['finished']}")
    cols[3].metric("Superseded executions", runs["superseded"], help="not counted as finished nor as failed")
    times = st.columns(5)
    times[0].metric(
        "Time to rollback from detection (mean)",
        hours(detection["mean_hours"]),
        help=f"{detection['count']} of {detection['rollbacks']} rollbacks; "
        f"{detection['without_detection']} without detection evidence",
    )
    times[1].metric(
        "Time to rollback from finish (mean)", hours(rollback["mean_hours"]), help=f"{rollback['count']} rollbacks"
    )
    times[2].metric(
        "Merge to production (median)",
        hours(rep["merge_to_production"]["median_hours"]),
        help=f"p90 {hours(rep['merge_to_production']['p90_hours'])}, {rep['merge_to_production']['count']} deployments",
    )
    times[3].metric("Approval latency (median)", hours(rep["approval_latency"]["median_hours"]))
    times[4].metric("Flaky stages", len(rep["flaky_stages"]))
    st.caption(
        " · ".join(
            summary(label, rep[key])
            for key, label in (
                ("time_to_deploy", "commit to production"),
                ("merge_to_production", "merge to production"),
                ("time_to_rollback", "finish to rollback"),
                ("detection_to_rollback", "detection to rollback"),
                ("build_duration", "build"),
                ("queue_time", "queue"),
            )
        )
    )

    if not rep["per_pipeline"]:
        st.info("No pipeline executions in this window for these filters.")
    else:
        st.subheader("Per pipeline")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "service": p["service"],
                        "pipeline": p["pipeline"],
                        "runs": p["runs"],
                        "superseded": p["superseded"],
                        "success rate": p["success_rate"],
                        "failed": p["failed"],
                        "median (h)": p["duration"]["median_hours"],
                        "p90 (h)": p["duration"]["p90_hours"],
                    }
                    for p in rep["per_pipeline"]
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={"success rate": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)},
        )
        st.subheader("Duration breakdown (median per execution)")
        breakdown = view["breakdown"]
        if not breakdown.empty:
            # A pipeline is named within its service: one bar per service and pipeline.
            breakdown = breakdown.assign(
                label=breakdown["service"].fillna("no service") + " · " + breakdown["pipeline"]
            )
            st.altair_chart(
                alt.Chart(breakdown)
                .mark_bar()
                .encode(
                    y=alt.Y("label:N", title="service · pipeline"),
                    x=alt.X("median_hours:Q", stack=True, title="hours"),
                    color=alt.Color("category:N", sort=list(data.CATEGORIES)),
                    order=alt.Order("category:N"),
                    tooltip=["service:N", "pipeline:N", "category:N", alt.Tooltip("median_hours:Q", format=".2f")],
                ),
                width="stretch",
            )
        st.subheader("Per stage")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "service": s["service"],
                        "pipeline": s["pipeline"],
                        "stage": s["stage"],
                        "category": s["category"],
                        "runs": s["runs"],
                        "success rate": s["success_rate"],
                        "retried (failed once)": s["failed_once"],
                        "flaky": s["flaky"],
                        "median (h)": s["duration"]["median_hours"],
                        "p90 (h)": s["duration"]["p90_hours"],
                    }
                    for s in rep["per_stage"]
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={"success rate": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)},
        )
        left, right = st.columns(2)
        with left:
            st.subheader("Approval latency")
            if view["approvals"].empty:
                st.caption("No approval actions in this window.")
            else:
                st.dataframe(
                    view["approvals"][["service", "pipeline", "count", "median_hours", "p90_hours", "max_hours"]],
                    hide_index=True,
                    width="stretch",
                )
        with right:
            st.subheader("Flaky stages")
            if rep["flaky_stages"]:
                st.dataframe(pd.DataFrame(rep["flaky_stages"]), hide_index=True, width="stretch")
            else:
                st.caption("No stage failed and then passed on a retry of the same revision.")

        st.subheader("Slowest executions")
        slow = view["slowest"]
        if slow.empty:
            st.caption("No finished executions in this window.")
        else:
            st.dataframe(slow, hide_index=True, width="stretch")
            labels = {
                row.id: f"{row.hours:.2f} h · {row.service} · {row.pipeline} · {row.status} · "
                f"{row.finished_at:%Y-%m-%d %H:%M}"
                for row in slow.itertuples()
            }
            chosen = st.selectbox(
                "Drill down into an execution", list(labels), format_func=lambda key: labels[key], key="run_pick"
            )
            detail = data.run_detail(store_url(), str(chosen))
            stages, actions = detail["stages"], detail["actions"]
            st.markdown(f"**Stages** of `{chosen}`")
            st.dataframe(
                stages.assign(hours=(stages["finished_at"] - stages["started_at"]) / pd.Timedelta(hours=1)),
                hide_index=True,
                width="stretch",
            )
            st.markdown("**Actions**")
            st.dataframe(
                actions.assign(hours=(actions["finished_at"] - actions["started_at"]) / pd.Timedelta(hours=1)),
                hide_index=True,
                width="stretch",
                column_config={"url": st.column_config.LinkColumn("url")},
            )
