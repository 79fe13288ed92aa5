"""On-call: what needs a person now, each item with its age, newest first (the dashboard's On-call page)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from analysis import oncall
from collector.config import Config
from collector.listings import load_canary_runs
from collector.loaders import Scope
from collector.oncall import load_incident_links, load_pending_approvals, load_run_stages
from collector.timeutil import utcnow
from gatewatch.services.delivery import dora_settings, open_work
from gatewatch.services.gates import gate_decisions_between
from gatewatch.services.notify import list_notifications
from gatewatch.services.slos import slo_overview

__all__ = ["RECENT_DECISIONS", "failed_notifications", "oncall_board", "oncall_burn_alerts"]

NOTIFICATION_COLUMNS = (
    *("id", "created_at", "event", "action", "channel", "channel_type", "dedup_key", "service", "team"),
    *("severity", "status", "attempts", "error", "summary", "decision_id", "body"),
)
RECENT_DECISIONS = timedelta(hours=24)  # gate holds and rollbacks this recent are listed
_LATE = timedelta(minutes=1)  # rows stamped up to this after `now` (a caller's whole-minute now) still count


def oncall_board(
    engine: Engine, config: Config, since: datetime, scope: Scope | None = None, now: datetime | None = None
) -> dict[str, pd.DataFrame]:
    """Each with `since` and `age`, newest first: `runs` (failing pipelines' latest executions and running
    ones, with the current stage and `stuck`), `approvals` (manual approvals waiting), `canaries` (failed
    or marginal runs since `since`), `decisions` (gate holds and rollbacks of the last 24 h),
    `rolling_back` (rollbacks in progress), `incidents` (open, with the deployment the DORA report
    links them to) and `notifications` (those that failed since `since`); and, as `open_work` gives
    them, `active_deployments` and `rollbacks` (finished)."""
    now = now or utcnow()
    scope = scope or Scope()
    work = open_work(engine, since, scope, now)
    active, failing = work["active_runs"], work["failing_runs"]
    stages = load_run_stages(engine, [*active["id"], *failing["id"]])
    _, link_window = dora_settings(config)
    deps, commit_links = load_incident_links(engine, work["open_incidents"], scope, link_window)
    canaries = load_canary_runs(engine, since, now + _LATE, scope)
    decisions = gate_decisions_between(engine, now - RECENT_DECISIONS, now + _LATE, scope)
    return {
        "runs": oncall.pipeline_runs(active, failing, work["finished_runs"], stages, now),
        "approvals": oncall.with_age(load_pending_approvals(engine, scope), "started_at", now, "waiting for {age}"),
        "canaries": oncall.failed_canaries(canaries, now),
        "decisions": oncall.holds_and_rollbacks(decisions, now),
        "rolling_back": oncall.rollbacks_in_progress(work["active_deployments"], now),
        "incidents": oncall.open_incidents(work["open_incidents"], deps, commit_links, link_window, now),
        "notifications": failed_notifications(engine, since, scope, now),
        "active_deployments": work["active_deployments"],
        "rollbacks": work["rollbacks"],
    }


def failed_notifications(engine: Engine, since: datetime, scope: Scope, now: datetime) -> pd.DataFrame:
    """Notifications that failed since `since` (of the scope's service and team), newest first, with their age."""
    rows = list_notifications(engine, status="failed", since=since, service=scope.service, team=scope.team)
    frame = pd.DataFrame(rows, columns=NOTIFICATION_COLUMNS).drop(columns="body", errors="ignore")
    return oncall.with_age(frame, "created_at", now, "failed {age} ago")


def oncall_burn_alerts(
    config: Config, folder: str | Path, service: str | None, team: str | None, now: datetime
) -> dict[str, Any]:
    """Burn-rate alerts firing on each SLO's newest data (`slo_overview`; an SLO whose data stopped is
    judged as of its newest point), of `service` and of `team`'s services (by the configured `teams`):
    {"firing": alerts with their data's age and `stale`, "stale": SLOs whose data stopped, with the
    newest point's age, "errors": what could not be read}."""
    found = slo_overview(config, folder, service, now, team=team)
    errors = [found["error"]] if found["error"] else [f"{s['name']}: {s['error']}" for s in found["slos"] if s["error"]]
    return {**oncall.burn_alerts(found["slos"], now), "errors": errors}
