"""SLOs, least error budget left first: error budget remaining and burn-down per SLO, burn rates per window
pair, and the 1h and 6h burn rates over time against the page alerts' thresholds."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import slo_data
from dashboard.common import filters, pct
from gatewatch import api

st.title("SLOs")
f = filters()
where = slo_data.folder()
if not where:
    st.info(slo_data.NO_SLOS)
else:
    at = min(api.utcnow(), f.window.end).replace(second=0, microsecond=0)
    scope = " and ".join(
        x for x in (f"service {f.service}" if f.service else "", f"team {f.team}" if f.team else "") if x
    )
    st.caption(
        f"SLO files in `{where}`, least error budget left first; status at {at:%Y-%m-%d %H:%M} UTC, burn-down "
        "over the time range, burn rates over the SLO window (or the time range, if shorter)"
        + (f"; {scope}" if scope else "")
    )
    found = slo_data.statuses(where, f.service, at, f.window.start, team=f.team)
    slos = found["slos"]
    if found["error"]:
        st.error(f"The SLO files could not be read: {found['error']}")
    elif not slos:
        st.info(f"No SLO files{' for ' + scope if scope else ''} in `{where}`.")
    for item in slos:
        if item["error"]:
            st.warning(f"SLO {item['name']} not read: {item['error']}")
            continue
        status = item["status"]
        budget = status["error_budget"]
        with st.container(border=True):
            st.subheader(f"{item['name']}" + (f" · {item['service']}" if item["service"] else ""))
            if item["team"]:
                st.caption(f"team {item['team']}")
            cols = st.columns(4)
            cols[0].metric("Objective", f"{status['objective'] * 100:g}% over {status['window']}")
            cols[1].metric("SLI", pct(status["sli"]) if status["sli"] is None else f"{status['sli'] * 100:.3f}%")
            cols[2].metric("Error budget remaining", pct(budget["remaining"]))
            cols[3].metric("Alerts firing", len(item["firing"]))
            if item.get("note"):
                st.warning(f"SLI data stopped: {item['note']}")
            if status.get("gaps"):
                st.warning(f"Burn rates not trustworthy: {status['gaps']}")
            if status.get("reason"):
                st.caption(status["reason"])
            history = item["history"]
            left, right = st.columns(2)
            with left:
                st.markdown("**Error budget burn-down**")
                if history is None or history.empty or history["budget_remaining"].isna().all():
                    st.caption("No SLI data over the time range.")
                else:
                    st.altair_chart(
                        alt.Chart(history)
                        .mark_line(point=True)
                        .encode(
                            x=alt.X("at:T", title=None),
                            y=alt.Y("budget_remaining:Q", title="budget remaining", axis=alt.Axis(format="%")),
                            tooltip=[
                                "at:T",
                                alt.Tooltip("budget_remaining:Q", format=".1%"),
                                alt.Tooltip("sli:Q", format=".4%"),
                            ],
                        ),
                        width="stretch",
                    )
            with right:
                st.markdown("**Burn rates per window pair**")
                rates = pd.DataFrame(status["burn_rates"])
                if rates.empty:
                    st.caption("No burn rates.")
                else:
                    st.dataframe(
                        rates[
                            [
                                "long_window",
                                "short_window",
                                "threshold",
                                "long_burn_rate",
                                "short_burn_rate",
                                "severity",
                                "firing",
                            ]
                        ],
                        hide_index=True,
                        width="stretch",
                    )
            st.markdown("**Burn rate over time** (dashed: the page alerts' thresholds)")
            burn = item["burn_history"]
            if burn.empty or burn["burn_rate"].isna().all():
                st.caption("No SLI data over the SLO window.")
            else:
                colour = alt.Color("window:N", title="window", sort=["1h", "6h"])
                lines = (
                    alt.Chart(burn)
                    .mark_line()
                    .encode(
                        x=alt.X("at:T", title=None),
                        y=alt.Y("burn_rate:Q", title="burn rate (x budget)"),
                        color=colour,
                        tooltip=["at:T", "window:N", alt.Tooltip("burn_rate:Q", format=".2f")],
                    )
                )
                limits = burn.dropna(subset=["threshold"]).drop_duplicates("window")
                rules = (
                    alt.Chart(limits)
                    .mark_rule(strokeDash=[6, 4])
                    .encode(y="threshold:Q", color=colour, tooltip=["window:N", "threshold:Q", "severity:N"])
                )
                st.altair_chart(alt.layer(lines, rules), width="stretch")
