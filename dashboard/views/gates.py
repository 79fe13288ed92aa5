"""Gate decisions: the audit log. Key, attempt, decision, checks, reasons, actions and their outcomes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.common import Colour, badge, filters, require_data, store_url

DECISION_COLOURS: dict[str, Colour] = {"promote": "green", "hold": "orange", "rollback": "red"}


def _summary(action: dict) -> str:
    attempt = action.get("attempt", 1)
    tries = f" (attempt {attempt} of {action.get('max_attempts')})" if attempt > 1 else ""
    return f"{action.get('type')}: {action.get('status')}{tries}"


def _attempts(actions: list[dict]) -> pd.DataFrame:
    """One row per attempt of each action (its history; an outcome stored before attempts were kept is one)."""
    rows = []
    for a in actions:
        for entry in a.get("history") or [a]:
            rows.append(
                {
                    "type": a.get("type"),
                    "target": a.get("target"),
                    "attempt": entry.get("attempt", 1),
                    "status": entry.get("status"),
                    "started_at": entry.get("started_at"),
                    "detail or error": entry.get("detail") or entry.get("error"),
                    "requests": entry.get("attempts"),
                    "seconds": entry.get("seconds"),
                }
            )
        if a.get("status") == "running":
            rows.append({"type": a.get("type"), "target": a.get("target"), "attempt": a.get("attempt")})
            rows[-1]["status"] = "running"
    return pd.DataFrame(rows)


st.title("Gate decisions")
f = filters()
st.caption(f.caption().replace(", production", ""))

if require_data():
    log = data.gate_decisions(store_url(), f.window.start, f.window.end, f.service, f.team)
    if log.empty:
        st.info(
            "No gate decisions in this window. `gatewatch gate check --policy gate.yaml` makes one and "
            "stores it here with its checks, reasons and actions."
        )
    else:
        counts = log["decision"].value_counts()
        cols = st.columns(4)
        cols[0].metric("Decisions", len(log))
        for col, name in zip(cols[1:], ("promote", "hold", "rollback")):
            col.metric(name.capitalize(), int(counts.get(name, 0)))
        failed_actions = sum(1 for acts in log["actions"] for a in acts if a.get("status") == "failed")
        if failed_actions:
            st.error(f"{failed_actions} action(s) failed: see the decisions below.")
        summary = log.assign(
            checks=[len(c) for c in log["checks"]],
            actions=[", ".join(_summary(a) for a in acts) or "-" for acts in log["actions"]],
            reasons=["; ".join(r) for r in log["reasons"]],
        )
        st.dataframe(
            summary[
                [
                    "created_at",
                    "gate",
                    "key",
                    "attempt",
                    "decision",
                    "service",
                    "deployment_id",
                    "checks",
                    "reasons",
                    "actions",
                ]
            ],
            hide_index=True,
            width="stretch",
        )
        st.subheader("Decisions")
        for row in log.head(50).itertuples():
            label = (
                f"{row.created_at:%Y-%m-%d %H:%M} · {row.gate} · {row.decision} · key {row.key} (attempt {row.attempt})"
            )
            with st.expander(label):
                badge(row.decision, DECISION_COLOURS)
                st.markdown(f"Service `{row.service or '-'}`, deployment `{row.deployment_id or '-'}`, id `{row.id}`")
                st.markdown("**Reasons**\n" + ("\n".join(f"- {r}" for r in row.reasons) or "none"))
                st.markdown("**Checks**")
                if row.checks:
                    checks = pd.DataFrame(row.checks)
                    st.dataframe(
                        checks.drop(columns=[c for c in ("evidence",) if c in checks]), hide_index=True, width="stretch"
                    )
                else:
                    st.caption("No checks recorded.")
                st.markdown("**Actions and their outcomes**")
                if row.actions:
                    st.dataframe(_attempts(row.actions), hide_index=True, width="stretch")
                else:
                    st.caption("No actions taken.")
                if row.evidence:
                    st.markdown("**Evidence**")
                    st.json(row.evidence, expanded=False)
