"""Gatewatch dashboard: a Streamlit app over the store (see the issues; not built yet)."""
