"""Temporary: the demo modules still import from here until they move (see gatewatch.errors)."""
from gatewatch.errors import ConfigError, GatewatchError, PayloadError, SourceUnavailable, StoreError  # noqa: F401
