"""Canary: the runs list, and one run's report: verdict and score, each metric's baseline and canary
distributions overlaid, its shift with the interval against the tolerance band, and the reasons."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import canary_data
from dashboard.common import Colour, badge, filters, require_data, store_url

VERDICT_COLOURS: dict[str, Colour] = {
    "pass": "green",
    "marginal": "orange",
    "fail": "red",
    "nodata": "gray",
    "continue": "blue",
}
LOOK_COLOURS = alt.Scale(
    domain=["continue", "pass", "fail", "nodata"], range=["#4c78a8", "#54a24b", "#e45756", "#9d9d9d"]
)


def sequence_section(key: str) -> None:
    """A sequential run's confidence sequence: per metric, its interval at each look against elapsed
    minutes with the tolerance band, and each look's decision."""
    sequence = canary_data.canary_sequence(store_url(), key)
    if sequence is None:
        st.caption(f"Sequence `{key}` is no longer in the store.")
        return
    rules, frame = sequence["rules"], sequence["frame"]
    st.subheader("Sequence: the anytime-valid interval at every look")
    decided = sequence["decision"] or "undecided"
    st.caption(
        f"Sequence `{key}`: {sequence['looks']} look(s), {decided}; a pass only from {rules['min_duration']}, "
        f"the fixed-horizon judge at {rules['max_duration']}. Each look's interval holds at every look at once, "
        "so the gate may ask as often as it likes."
    )
    drawn = frame.dropna(subset=["low", "high"]).copy()
    drawn = drawn[drawn[["low", "high"]].abs().le(1e6).all(axis=1)]  # the first looks' bounds may be infinite
    if not drawn.empty:
        drawn = drawn.assign(band_low=-drawn["fail_band"])
        x = alt.X("minutes:Q", title="minutes since the sequence started")
        base = alt.Chart().encode(x=x)
        band = base.mark_area(opacity=0.2, color="#54a24b").encode(
            y=alt.Y("band_low:Q", title="shift relative to the baseline", axis=alt.Axis(format="%")), y2="fail_band:Q"
        )
        interval = base.mark_rule(strokeWidth=3).encode(
            y="low:Q", y2="high:Q", color=alt.Color("verdict:N", scale=LOOK_COLOURS, title="look")
        )
        point = base.mark_point(filled=True).encode(
            y="shift:Q",
            color=alt.Color("verdict:N", scale=LOOK_COLOURS),
            tooltip=[
                "look:Q",
                alt.Tooltip("minutes:Q", format=".1f"),
                "verdict:N",
                alt.Tooltip("shift:Q", format="+.1%"),
                alt.Tooltip("low:Q", format="+.1%"),
                alt.Tooltip("high:Q", format="+.1%"),
                alt.Tooltip("fail_band:Q", format=".1%", title="tolerance"),
            ],
        )
        zero = base.mark_rule(strokeDash=[4, 4]).encode(y=alt.datum(0))
        st.altair_chart(
            alt.layer(band, interval, point, zero, data=drawn)
            .properties(height=160)
            .facet(row=alt.Row("metric:N", title=None))
            .resolve_scale(y="independent")
        )
    looks = frame.drop_duplicates("look")[["look", "minutes", "verdict", "run_id"]]
    st.dataframe(looks.round({"minutes": 1}), hide_index=True, width="stretch")


st.title("Canary analysis")
f = filters()
st.caption(f.caption().replace(", production", "") + "; a service or team filter keeps runs of its deployments")

if require_data():
    runs = canary_data.canary_runs(store_url(), f.window.start, f.window.end, f.service, f.team)
    if runs.empty:
        st.info(
            "No canary runs in this window. Judge one with `gatewatch canary judge --config canary.yaml "
            "--data samples.csv` or `gatewatch canary run ... --prometheus URL`; each run is stored here."
        )
    else:
        st.dataframe(
            runs[["created_at", "verdict", "score", "service", "deployment_id", "source", "id"]],
            hide_index=True,
            width="stretch",
        )
        labels = {
            r.id: f"{r.created_at:%Y-%m-%d %H:%M} · {r.verdict} · "
            f"{'-' if pd.isna(r.score) else f'{r.score:.0f}'} · {r.service or r.deployment_id or r.source}"
            for r in runs.itertuples()
        }
        chosen = st.selectbox("Run", list(labels), format_func=lambda key: labels[key], key="canary_pick")
        run = canary_data.canary_report(store_url(), chosen) if chosen is not None else None
        if run is None:
            st.warning(f"Run {chosen} is no longer in the store.")
        else:
            cols = st.columns(4)
            with cols[0]:
                st.markdown("**Verdict**")
                badge(run["verdict"], VERDICT_COLOURS)
            cols[1].metric("Score", "-" if run["score"] is None else f"{run['score']:.1f}")
            cols[2].metric("Metrics", len(run["metrics"]))
            cols[3].metric("Failed", sum(1 for m in run["metrics"] if m.get("passed") is False))
            start, end = run["window"]
            st.caption(
                f"Run `{run['id']}` from {run['source']}"
                + (f", deployment `{run['deployment_id']}`" if run["deployment_id"] else "")
                + (f", window {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC" if start and end else "")
                + (
                    f", baseline `{run['baseline_scope']}` vs canary `{run['canary_scope']}`"
                    if run["baseline_scope"]
                    else ""
                )
            )
            st.subheader("Reasons")
            st.markdown("\n".join(f"- {r}" for r in run["reasons"]) or "No reasons recorded.")
            if run.get("sequence_key"):
                sequence_section(run["sequence_key"])

            shifts = pd.DataFrame(
                [
                    {
                        "metric": m["name"],
                        "shift": m.get("shift"),
                        "lo": (m.get("ci") or [None, None])[0],
                        "hi": (m.get("ci") or [None, None])[1],
                        "band": m.get("band"),
                        "classification": m["classification"],
                    }
                    for m in run["metrics"]
                ]
            )
            judged = shifts.dropna(subset=["shift", "lo", "hi", "band"])
            if not judged.empty and not run.get("sequence_key"):  # a sequence's look is drawn above
                st.subheader("Shift (canary - baseline) with its interval, against the tolerance band")
                judged = judged.assign(neg=-judged["band"])
                colour = alt.Color(
                    "classification:N",
                    scale=alt.Scale(domain=["pass", "high", "low"], range=["#4c78a8", "#e45756", "#e45756"]),
                )
                base = alt.Chart().encode()
                band = base.mark_bar(opacity=0.25, color="#54a24b").encode(x=alt.X("neg:Q", title="shift"), x2="band:Q")
                interval = base.mark_rule(strokeWidth=3).encode(x="lo:Q", x2="hi:Q", color=colour)
                point = base.mark_point(filled=True, size=80).encode(
                    x="shift:Q",
                    color=colour,
                    tooltip=[
                        "metric:N",
                        alt.Tooltip("shift:Q", format=".4g"),
                        alt.Tooltip("lo:Q", format=".4g"),
                        alt.Tooltip("hi:Q", format=".4g"),
                        alt.Tooltip("band:Q", format=".4g"),
                    ],
                )
                zero = base.mark_rule(strokeDash=[4, 4]).encode(x=alt.datum(0))
                # one row per metric on its own scale: metrics have different units
                chart = (
                    alt.layer(band, interval, point, zero, data=judged)
                    .properties(height=36)
                    .facet(row=alt.Row("metric:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
                    .resolve_scale(x="independent")
                )
                st.altair_chart(chart)
                st.caption(
                    "Green: ± tolerance × |baseline median|. A metric fails when its whole interval lies "
                    "outside the band on the worse side."
                )

            st.subheader("Distributions")
            for m in run["metrics"]:
                with st.container(border=True):
                    title = f"**{m['name']}** · {m['classification']}" + (" · critical" if m.get("critical") else "")
                    st.markdown(title)
                    st.caption(m.get("reason") or "")
                    hist = m["histogram"]
                    if hist.empty or not hist["share"].sum():
                        st.caption("No samples stored for this metric.")
                        continue
                    st.altair_chart(
                        alt.Chart(hist)
                        .mark_bar(opacity=0.5, binSpacing=0)
                        .encode(
                            x=alt.X(
                                "lo:Q",
                                title="rate per interval" if m.get("test") == "proportion" else "value",
                                scale=alt.Scale(zero=False),
                            ),
                            x2="hi:Q",
                            y=alt.Y("share:Q", stack=None, title="share of samples"),
                            y2=alt.datum(0),
                            color=alt.Color(
                                "side:N", scale=alt.Scale(domain=["baseline", "canary"], range=["#4c78a8", "#f58518"])
                            ),
                            tooltip=["side:N", "lo:Q", "hi:Q", alt.Tooltip("share:Q", format=".1%")],
                        ),
                        width="stretch",
                    )
