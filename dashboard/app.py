"""The Gatewatch dashboard: `gatewatch dashboard`, or `streamlit run dashboard/app.py` (reads GATEWATCH_DB).

A multipage app (st.navigation); the sidebar's filters (time range, service, team, environment)
apply to every page."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` from a checkout without an installed package
    sys.path.insert(0, str(ROOT))

from dashboard import workers

workers.start()  # first: it starts while this process imports the rest

from dashboard.common import sidebar
from gatewatch.process import use_system_allocator

use_system_allocator()

PAGES = [
    st.Page("views/executive.py", title="Executive", icon=":material/monitoring:", default=True),
    st.Page("views/oncall.py", title="On-call", icon=":material/notifications_active:"),
    st.Page("views/pipelines.py", title="Pipelines", icon=":material/account_tree:"),
    st.Page("views/canary.py", title="Canary", icon=":material/compare_arrows:"),
    st.Page("views/slos.py", title="SLOs", icon=":material/speed:"),
    st.Page("views/gates.py", title="Gate decisions", icon=":material/gavel:"),
]

st.set_page_config(page_title="Gatewatch", page_icon=":material/monitoring:", layout="wide")
page = st.navigation(PAGES)
sidebar()
page.run()
