"""Re-attempting a decision's failed actions: on a later call with the decision's key, or on request
(`gatewatch gate retry-actions`). Only a `failed` action is re-run, up to its policy's max_attempts in
all; an `ok` one never is. A caller claims the actions it retries under the decision's row lock (status
`running`), so two callers never re-run the same action; each attempt joins the outcome's `history`."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from collector.gate_decisions import StoredDecision, update_actions
from collector.redaction import scrubbed_traceback
from collector.timeutil import utcnow

from .actions import Clients, aws_client, for_decision, run_action
from .checks import Context
from .policy import Policy

log = logging.getLogger(__name__)

# A claim this old lost its caller (killed mid-action): the action counts as failed (interrupted).
STALE_CLAIM = timedelta(minutes=15)


@dataclass
class RetryReport:
    """What a retry did, by action position in the decision's `actions`: re-attempted, left at its
    limit, being run by another caller, or no longer in the policy; and the actions as now stored."""

    retried: list[int] = field(default_factory=list)
    exhausted: list[int] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    incomplete: bool = False  # the deciding call has not recorded every action yet
    decision: StoredDecision | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "key": d.key if d else None,
            "decision_id": d.id if d else None,
            "gate": d.gate if d else None,
            "decision": d.decision if d else None,
            "retried": self.retried,
            "exhausted": self.exhausted,
            "busy": self.busy,
            "unmatched": self.unmatched,
            "incomplete": self.incomplete,
            "actions": self.actions,
        }


def _interrupted(outcome: dict[str, Any]) -> dict[str, Any]:
    """A stale claim as a failed attempt, so the next claim counts it."""
    entry = {
        "attempt": outcome["attempt"],
        "status": "failed",
        "error": "interrupted: no outcome was recorded",
        "started_at": outcome.get("claimed_at"),
    }
    return outcome | {"status": "failed", "error": entry["error"], "history": [*outcome.get("history", []), entry]}


def retry_failed(policy: Policy, stored: StoredDecision, ctx: Context, clients: Clients | None = None) -> RetryReport:
    """Re-attempt the decision's failed actions that have attempts left; `stored.actions` becomes what is
    stored after. The caller's parameters (`ctx.params`) win over those kept from the earlier attempt. An
    action the deciding call never recorded (it died, or the policy gained it since) is not run."""
    expected = for_decision(policy, stored.decision)
    token = str(uuid.uuid4())
    report = RetryReport(decision=stored)

    def claim(current: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        report.actions = current
        now, claimed, interrupted = utcnow(), [], False
        if len(current) < len(expected) and now - stored.created_at < STALE_CLAIM:
            report.incomplete = True  # the deciding call is still acting: wait for its outcomes
            return None
        for i, outcome in enumerate(current):
            if i >= len(expected) or outcome.get("type") != expected[i].type:
                if outcome.get("status") != "ok":
                    report.unmatched.append(i)
                claimed.append(outcome)
                continue
            if outcome.get("status") == "running":
                since = outcome.get("claimed_at")
                if since is None or now - datetime.fromisoformat(since) < STALE_CLAIM:
                    report.busy.append(i)
                    claimed.append(outcome)
                    continue
                outcome, interrupted = _interrupted(outcome), True
            attempt = int(outcome.get("attempt", 1))
            if outcome.get("status") != "failed":
                claimed.append(outcome)
            elif attempt >= policy.max_attempts(expected[i]):
                report.exhausted.append(i)
                claimed.append(outcome)
            else:
                report.retried.append(i)
                claimed.append(
                    outcome
                    | {
                        "status": "running",
                        "attempt": attempt + 1,
                        "history": outcome.get("history") or [_first_entry(outcome)],
                        "claim": token,
                        "claimed_at": now.isoformat(),
                    }
                )
        return claimed if report.retried or interrupted else None  # an interrupted one is recorded as such

    written = update_actions(ctx.engine, stored.id, claim)
    if written is None or not report.retried:
        stored.actions = report.actions = written or report.actions
        return report
    actions = written
    for i in report.retried:
        earlier = actions[i]
        params = dict(earlier.get("params") or {}) | dict(ctx.params or {})
        outcome = run_action(
            expected[i],
            replace(stored, actions=[]),  # a webhook's body is the decision before actions, as on the first run
            replace(ctx, params=params),
            clients or aws_client,
            attempt=earlier["attempt"],
            max_attempts=policy.max_attempts(expected[i]),
            history=earlier["history"],
        )

        def record(current: list[dict[str, Any]], i: int = i, outcome: dict = outcome) -> list[dict[str, Any]] | None:
            if i >= len(current) or current[i].get("claim") != token:
                log.error("decision %s: the claim on action %d was lost; its outcome is not recorded", stored.id, i)
                return None
            return [*current[:i], outcome, *current[i + 1 :]]

        try:
            actions = update_actions(ctx.engine, stored.id, record) or actions
        except Exception:  # the next action matters more than this record (the claim goes stale)
            log.error(
                "could not record attempt %d of action %d of decision %s:\n%s",
                outcome["attempt"],
                i,
                stored.id,
                scrubbed_traceback(),
            )
        actions = [*actions[:i], outcome, *actions[i + 1 :]]
    report.actions = stored.actions = actions
    failed_again = [i for i in report.retried if actions[i].get("status") == "failed"]
    if failed_again and ctx.notifier is not None:
        ctx.notifier.retried(stored, failed_again)
    return report


def _first_entry(outcome: dict[str, Any]) -> dict[str, Any]:
    """The history entry of an outcome recorded before attempts were kept (attempt 1)."""
    keep = ("started_at", "status", "detail", "error", "attempts", "seconds")
    return {"attempt": 1, **{k: outcome[k] for k in keep if k in outcome}}
