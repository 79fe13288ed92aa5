"""Executive: the DORA keys with tiers and the change against the previous period, deployment cadence,
change failure rate by service and week, lead-time distribution (figures as `gatewatch dora`)."""

from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import data
from dashboard.common import filters, hours, pct, require_data, store_url, tier_badge

st.title("Executive")
f = filters()
st.caption(f.caption() + "; change against the previous period of equal length")

if require_data("deployments"):
    w = f.window
    view = data.executive(store_url(), w.start, w.end, w.tz, f.service, f.team, f.environment)
    now, before = view["report"], view["previous"]

    def delta(value, previous, scale=1.0, unit=""):
        if value is None or previous is None:
            return None
        return f"{(value - previous) * scale:+.2f}{unit}"

    st.subheader("DORA keys")
    df, lt, cfr, rt, rw = (
        now[k] for k in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "rework_rate")
    )
    pdf, plt_, pcfr, prt, prw = (
        before[k] for k in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "rework_rate")
    )
    cols = st.columns(5)
    with cols[0]:
        st.metric(
            "Deployment frequency",
            "no data" if df["per_day"] is None else f"{df['per_day']:.2f}/day",
            delta(df["per_day"], pdf["per_day"], unit="/day"),
            help=f"{df['deployments']} deployments; previous period {pdf['deployments']}",
        )
        tier_badge(df["tier"])
    with cols[1]:
        st.metric(
            "Change lead time (median)",
            hours(lt["median_hours"]),
            delta(lt["median_hours"], plt_["median_hours"], unit=" h"),
            delta_color="inverse",
            help=f"{lt['changes']} changes; p90 {hours(lt['p90_hours'])}",
        )
        tier_badge(lt["tier"])
    with cols[2]:
        st.metric(
            "Change failure rate",
            pct(cfr["rate"]),
            delta(cfr["rate"], pcfr["rate"], 100, " pp"),
            delta_color="inverse",
            help=f"{cfr['failed']} failed of {cfr['deployments']}",
        )
        tier_badge(cfr["tier"])
    with cols[3]:
        st.metric(
            "Recovery time (median)",
            hours(rt["median_hours"]),
            delta(rt["median_hours"], prt["median_hours"], unit=" h"),
            delta_color="inverse",
            help=f"{rt['recovered']} recovered, {rt['open']} open",
        )
        tier_badge(rt["tier"])
    with cols[4]:
        st.metric(
            "Rework rate",
            pct(rw["rate"]),
            delta(rw["rate"], prw["rate"], 100, " pp"),
            delta_color="inverse",
            help=f"{rw['rework']} rollbacks and hotfixes of {rw['deployments']}",
        )
    reasons = [m.get("reason") for m in (df, lt, cfr, rt, rw) if m.get("reason")]
    if reasons:
        st.caption("; ".join(dict.fromkeys(reasons)))
    st.caption(
        f"Tiers from the {now['benchmark']} benchmark; incidents link to deployments within "
        f"{now['link_window_hours']:g} h."
    )

    if df["deployments"]:
        left, right = st.columns(2)
        with left:
            st.subheader("Deployment cadence")
            daily = view["daily"]
            st.altair_chart(
                alt.Chart(daily)
                .mark_bar()
                .encode(
                    x=alt.X("day:T", title=None),
                    y=alt.Y("deployments:Q", stack=True, title="deployments per day"),
                    color=alt.Color(
                        "outcome:N", scale=alt.Scale(domain=["ok", "failed"], range=["#4c78a8", "#e45756"])
                    ),
                    tooltip=["day:T", "outcome:N", "deployments:Q"],
                ),
                width="stretch",
            )
        with right:
            st.subheader("Lead-time distribution")
            st.altair_chart(
                alt.Chart(view["lead_histogram"])
                .mark_bar()
                .encode(
                    x=alt.X("lead_time:N", sort=alt.SortField("order"), title="commit to production"),
                    y=alt.Y("changes:Q"),
                    tooltip=["lead_time:N", "changes:Q"],
                ),
                width="stretch",
            )
        st.subheader("Change failure rate by service and week")
        heat = view["heatmap"]
        if view["services_total"] > heat["service"].nunique():
            st.caption(f"The {heat['service'].nunique()} busiest of {view['services_total']} services.")
        st.altair_chart(
            alt.Chart(heat)
            .mark_rect()
            .encode(
                x=alt.X("week:O", title="week starting (Monday)"),
                y=alt.Y("service:N", title=None),
                color=alt.Color("rate:Q", title="CFR", scale=alt.Scale(scheme="orangered", domain=[0, 1])),
                tooltip=[
                    "service:N",
                    alt.Tooltip("week:O", title="week"),
                    "deployments:Q",
                    "failed:Q",
                    alt.Tooltip("rate:Q", format=".0%"),
                ],
            ),
            width="stretch",
        )
        with st.expander("Per week"):
            st.dataframe(
                [
                    {
                        "week": item["window"]["start"][:10],
                        "deployments": item["deployment_frequency"]["deployments"],
                        "lead time median (h)": item["lead_time"]["median_hours"],
                        "change failure rate": item["change_failure_rate"]["rate"],
                        "recovery median (h)": item["recovery_time"]["median_hours"],
                        "rework rate": item["rework_rate"]["rate"],
                    }
                    for item in now.get("series", [])
                ],
                width="stretch",
                hide_index=True,
            )
    else:
        st.info(
            "No production deployments finished in this window for these filters: widen the time range or "
            "clear a filter."
        )
