"""Gatewatch collector: ingests pipeline, deployment, incident and telemetry events into one store."""
