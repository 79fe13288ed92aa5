"""The demo organisation: its delivery history as real payloads, ingested, and its SLOs, canaries and gates."""

from __future__ import annotations

from .config import CONFIG_FILE, config_for_run, merged_config, write_config
from .extras import DemoExtras, build
from .history import end_of, generate
from .organisation import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_SERVICES,
    DEMO_FILES,
    MAX_DAYS,
    MAX_SERVICES,
    Person,
    Service,
    demo_config_mapping,
    organisation,
)
from .run import DemoResult, DemoRun, build_demo, envelopes, payload_kind, run_demo

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "DEFAULT_SERVICES",
    "DEMO_FILES",
    "MAX_DAYS",
    "MAX_SERVICES",
    "DemoExtras",
    "DemoResult",
    "DemoRun",
    "Person",
    "Service",
    "build",
    "build_demo",
    "config_for_run",
    "demo_config_mapping",
    "end_of",
    "envelopes",
    "generate",
    "merged_config",
    "organisation",
    "payload_kind",
    "run_demo",
    "write_config",
]
