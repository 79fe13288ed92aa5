"""Gatewatch gates: promote, hold or roll back a deployment from a policy (see the issues; not built yet)."""
