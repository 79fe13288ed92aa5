"""Gatewatch's service API: every use case the surfaces need (the `gatewatch` command, the HTTP service,
the CodePipeline Lambda handler, the Flagger and Argo adapters, the dashboard and the notebooks), each a
plain function over the store's engine and the configuration in use.

```python
from gatewatch import api

config = api.load_config()                       # gatewatch.yaml and the environment
engine = api.open_store(config)                  # the store (migrated on first use)
window = api.report_window("90d")
report = api.dora_report(engine, config, window, api.Scope(team="payments"), by="week")
```

Names load on first use, so a surface imports only what it calls (the dashboard's executive page never
imports the statistics stack). Errors are `gatewatch.errors.GatewatchError` subclasses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it ("module:name" where it is named differently there)
_EXPORTS = {
    # configuration and the store
    "Engine": "sqlalchemy",
    "Config": "collector.config",
    "load_config": "collector.config",
    "store_url": "collector.config",
    "utcnow": "collector.timeutil",
    "parse_time": "collector.timeutil",
    "parse_span": "collector.timeutil",
    "open_store": "gatewatch.services.store",
    "upgrade_store": "gatewatch.services.store",
    "store_revision": "gatewatch.services.store",
    "check_store": "gatewatch.services.store",
    "store_counts": "gatewatch.services.store",
    "filter_options": "gatewatch.services.store",
    "count_raw_events": "gatewatch.services.store",
    "newest_event_times": "gatewatch.services.store",
    "describe_store": "gatewatch.services.store",
    "close_stores": "gatewatch.services.store",
    "schema_revision": "gatewatch.services.store",
    "in_memory_store": "gatewatch.services.store",
    # ingest
    "IngestSummary": "collector.ingest",
    "ReplaySummary": "collector.ingest",
    "SOURCE_CHOICES": "collector.ingest",
    "ingest_files": "gatewatch.services.store",
    "ingest_text": "gatewatch.services.store",
    "replay": "gatewatch.services.store",
    "list_quarantined": "gatewatch.services.store",
    "quarantine_groups": "gatewatch.services.store",
    "production_stage_warnings": "gatewatch.services.store",
    "backfill_codepipeline": "gatewatch.services.store",
    "codepipeline_client": "gatewatch.services.store",
    "backfill_codecommit": "gatewatch.services.store",
    "codecommit_client": "gatewatch.services.store",
    "backfill_codedeploy": "gatewatch.services.store",
    "codedeploy_client": "gatewatch.services.store",
    # delivery analytics
    "Scope": "collector.loaders",
    "Window": "analysis.windows",
    "window_between": "analysis.windows",
    "window_since": "analysis.windows",
    "BUCKETS": "analysis.windows",
    "report_window": "gatewatch.services.delivery",
    "dora_settings": "gatewatch.services.delivery",
    "dora_frames": "gatewatch.services.delivery",
    "dora_report": "gatewatch.services.delivery",
    "dora_details": "gatewatch.services.delivery",
    "DoraDetails": "gatewatch.services.delivery",
    "pipeline_report": "gatewatch.services.delivery",
    "pipeline_overview": "gatewatch.services.delivery",
    "open_work": "gatewatch.services.delivery",
    "run_detail": "gatewatch.services.delivery",
    # canary analysis
    "CsvSamples": "collector.telemetry",
    "PrometheusSamples": "collector.telemetry",
    "CloudWatchSamples": "collector.telemetry",
    "CanaryOutcome": "collector.canary_runs",
    "CanaryRun": "collector.canary_runs",
    "Verdict": "analysis.canary",
    "load_canary_config": "gatewatch.services.canary",
    "run_canary": "gatewatch.services.canary",
    "get_canary_run": "gatewatch.services.canary",
    "list_canary_runs": "gatewatch.services.canary",
    "canary_runs_between": "gatewatch.services.canary",
    "canary_report": "gatewatch.services.canary",
    "canary_sequence": "gatewatch.services.canary",
    "list_canary_sequences": "gatewatch.services.canary",
    "import_kayenta_config": "gatewatch.services.canary",
    "KayentaImport": "gatewatch.services.canary",
    # SLOs
    "load_slo": "gatewatch.services.slos",
    "load_slos": "gatewatch.services.slos",
    "slo_status": "gatewatch.services.slos",
    "budget_history": "gatewatch.services.slos",
    "burn_rate_history": "gatewatch.services.slos",
    "slo_overview": "gatewatch.services.slos",
    "alert_rules": "gatewatch.services.slos",
    "AlertRules": "gatewatch.services.slos",
    "rules_yaml": "gatewatch.services.slos",
    "cloudwatch_alarms": "gatewatch.services.slos",
    "alarms_json": "gatewatch.services.slos",
    "alarms_template": "gatewatch.services.slos",
    "SloStatus": "analysis.slo",
    # gates
    "GateRequest": "gatewatch.services.gates",
    "StoredDecision": "collector.gate_decisions",
    "load_policy": "gatewatch.services.gates",
    "load_policies": "gatewatch.services.gates",
    "evaluate_gate": "gatewatch.services.gates",
    "get_gate_decision": "gatewatch.services.gates",
    "retry_gate_actions": "gatewatch.services.gates",
    "RetryReport": "gates.retries",
    "describe_gates": "gatewatch.services.gates",
    "gate_decisions_between": "gatewatch.services.gates",
    "write_step_outputs": "gates.github_actions",
    "Policy": "gates.policy",
    "unreadable_checks": "gatewatch.services.gates",
    # on-call
    "oncall_board": "gatewatch.services.oncall",
    "oncall_burn_alerts": "gatewatch.services.oncall",
    # notifications
    "Notification": "gates.notify",
    "NotifyScan": "gatewatch.services.notify",
    "test_channel": "gatewatch.services.notify",
    "list_notifications": "gatewatch.services.notify",
    "notify_slo": "gatewatch.services.notify",
    "scan_notifications": "gatewatch.services.notify",
    "start_notify_scanner": "gatewatch.services.notify",
    # the demo organisation
    "build_demo": "gatewatch.demo",
    "DemoRun": "gatewatch.demo",
    "DemoResult": "gatewatch.demo",
    "DemoExtras": "gatewatch.demo",
    "DEMO_DEFAULT_SERVICES": "gatewatch.demo:DEFAULT_SERVICES",
    "DEMO_DEFAULT_DAYS": "gatewatch.demo:DEFAULT_DAYS",
    "DEMO_DEFAULT_SEED": "gatewatch.demo:DEFAULT_SEED",
    "DEMO_MAX_SERVICES": "gatewatch.demo:MAX_SERVICES",
    "DEMO_MAX_DAYS": "gatewatch.demo:MAX_DAYS",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - a list, built from the table above


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'gatewatch.api' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    pass
