"""The events that notify, each with its service (team and severity follow) for routing, a stable
dedup_key, a summary and details: a gate decision and its failed actions, a failed canary, a failed
production deployment, an SLO's burn-rate alerts and stale data."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from analysis.slo import SloStatus
from collector.gate_decisions import StoredDecision
from gatewatch.schema import duration_label

from .messages import SUMMARY_MAX, Notification, _cut

__all__ = [
    "burn_rate_notifications",
    "canary_notification",
    "decision_link",
    "decision_notifications",
    "deployment_notification",
]


def decision_link(base_url: str | None, decision_id: str) -> str | None:
    """The gate API's URL of a decision, when the base URL is configured."""
    return f"{base_url.rstrip('/')}/v1/decisions/{decision_id}" if base_url else None


def _about(stored: StoredDecision, base_url: str | None) -> tuple[str | None, str, dict[str, Any]]:
    """A decision's link, where it applies ("api (deployment d-1)") and the details every notification of it carries."""
    where = f"{stored.service or 'unknown service'}" + (
        f" (deployment {stored.deployment_id})" if stored.deployment_id else ""
    )
    base = {
        "gate": stored.gate,
        "key": stored.key,
        "attempt": stored.attempt,
        "decision": stored.decision,
        "deployment_id": stored.deployment_id,
        "reasons": stored.reasons,
    }
    return decision_link(base_url, stored.id), where, base


def decision_notifications(stored: StoredDecision, base_url: str | None = None) -> list[Notification]:
    """What a decision tells: for the call that made it, a rollback, a hold on the key's first attempt,
    and each action that failed."""
    if not stored.first:
        return []
    link, where, base = _about(stored, base_url)
    out = []
    if stored.decision == "rollback" or (stored.decision == "hold" and stored.attempt == 1):
        reasons = "; ".join(stored.reasons) or "no reason given"
        out.append(
            Notification(
                f"gate_{stored.decision}",
                _cut(f"Gate {stored.gate} decided {stored.decision.upper()} for {where}: {reasons}", SUMMARY_MAX),
                f"gate_{stored.decision}:{stored.key}",
                service=stored.service,
                details=base | {"checks": [_check(c) for c in stored.checks]},
                link=link,
                decision_id=stored.id,
                at=stored.created_at,
            )
        )
    return out + action_failed_notifications(stored, base_url)


def action_failed_notifications(
    stored: StoredDecision, base_url: str | None = None, positions: list[int] | None = None
) -> list[Notification]:
    """Each failed action of the decision (of `positions` when given: those a retry just re-attempted);
    the dedup_key names the action and its attempt, so a retry that fails again is told again."""
    link, where, base = _about(stored, base_url)
    out = []
    for i, action in enumerate(stored.actions):
        if action.get("status") != "failed" or (positions is not None and i not in positions):
            continue
        target = action.get("target") or "-"
        out.append(
            Notification(
                "action_failed",
                _cut(
                    f"Action {action.get('type')} {target} for the {stored.decision} of gate {stored.gate} for "
                    f"{where} failed: {action.get('error')}",
                    SUMMARY_MAX,
                ),
                f"action_failed:{stored.id}:{i}:{action.get('attempt', 1)}",
                service=stored.service,
                details=base | {"action": action},
                link=link,
                decision_id=stored.id,
                at=stored.created_at,
            )
        )
    return out


def _check(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result.get(k) for k in ("name", "status", "effect", "reason")}


def canary_notification(
    verdict: dict[str, Any], run_id: str | None, deployment_id: str | None, service: str | None, at: datetime
) -> Notification | None:
    """A canary `fail` verdict's notification (None for any other verdict)."""
    if verdict.get("verdict") != "fail":
        return None
    reasons = verdict.get("reasons") or []
    subject = f"deployment {deployment_id}" if deployment_id else f"run {run_id}"
    return Notification(
        "canary_fail",
        _cut(
            f"Canary of {subject} failed (score {verdict.get('score')}): {'; '.join(reasons) or 'no reason given'}",
            SUMMARY_MAX,
        ),
        f"canary_fail:{deployment_id or run_id or uuid.uuid4()}",
        service=service,
        details={"run_id": run_id, "deployment_id": deployment_id, "score": verdict.get("score"), "reasons": reasons},
        at=at,
    )


def deployment_notification(deployment: dict[str, Any]) -> Notification:
    """A failed production deployment's notification."""
    service = deployment.get("service")
    version = f" {deployment['version']}" if deployment.get("version") else ""
    return Notification(
        "deployment_failed",
        f"Production deployment{version} of {service or 'unknown service'} failed ({deployment['id']})",
        f"deployment_failed:{deployment['id']}",
        service=service,
        team=deployment.get("team"),
        details={k: v for k, v in deployment.items() if v is not None},
        link=deployment.get("url"),
        at=deployment.get("finished_at"),
    )


def burn_rate_notifications(
    service: str, slo: str, status: SloStatus, runbook: str | None = None
) -> list[Notification]:
    """An SLO's burn-rate notifications at its status: a trigger per severity (page, ticket) with an
    alert firing, a resolve per severity with none; on stale data a `data_stale` trigger and nothing
    resolved (stale data tells nothing is fine)."""
    name = f"{service}/{slo}"
    figures = {
        "slo": slo,
        "sli": status.sli,
        "objective": status.objective,
        "budget_remaining": status.budget_remaining,
        "at": status.at.isoformat(),
        "runbook_url": runbook,
    }
    if status.stale:
        return [
            Notification(
                "data_stale",
                f"SLO {name}: {status.stale}; burn-rate alerts cannot be evaluated",
                f"data_stale:{name}",
                service=service,
                details=figures | {"newest": status.newest.isoformat() if status.newest else None},
                link=runbook,
                at=status.at,
            )
        ]
    out = []
    for severity in ("page", "ticket"):
        alerts = [a for a in status.alerts if a.severity == severity]
        if not alerts:
            continue
        firing = [a for a in alerts if a.firing]
        if not firing and status.gaps:  # gaps say nothing about whether it stopped: resolve nothing
            continue
        if firing:
            rates = ", ".join(
                f"{a.long_burn_rate or 0:.1f}x over {_span(a.long_window)} and {a.short_burn_rate or 0:.1f}x over "
                f"{_span(a.short_window)} (threshold {a.threshold:g}x)"
                for a in firing
            )
            summary = f"SLO {name} burning its error budget: {rates}"
        else:
            summary = f"SLO {name}: {severity} burn-rate alert no longer firing"
        out.append(
            Notification(
                f"burn_rate_{severity}",
                _cut(summary, SUMMARY_MAX),
                f"burn_rate:{name}:{severity}",
                service=service,
                action="trigger" if firing else "resolve",
                details=figures | {"alerts": [a.to_dict() for a in alerts]},
                link=runbook,
                at=status.at,
            )
        )
    return out


def _span(span: timedelta) -> str:
    return duration_label(span)
