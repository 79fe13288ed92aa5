"""Gatewatch dashboard: a Streamlit app over the store (`gatewatch dashboard`; pages in dashboard/views/)."""
