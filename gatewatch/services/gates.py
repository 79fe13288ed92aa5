"""Deployment gates: read policies, evaluate a gate for a deployment into a stored decision (its checks'
evidence from the other services, with the store and configuration in use), read decisions back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from analysis.canary import CanaryConfig
from analysis.slo import SloSpec, SloStatus
from analysis.windows import Window
from collector.canary_runs import CanaryOutcome
from collector.config import Config
from collector.gate_decisions import StoredDecision, get_decision
from collector.listings import load_gate_decisions
from collector.loaders import Scope
from collector.telemetry import SampleSource
from collector.timeutil import utcnow
from gates import service
from gates.checks import UNAVAILABLE, Context
from gates.notify import Notifier
from gates.policy import Policy
from gates.retries import RetryReport, retry_failed
from gatewatch.errors import ConfigError

from . import canary as canary_service
from . import delivery, slos

__all__ = [
    "GateRequest",
    "describe_gates",
    "evaluate_gate",
    "gate_decisions_between",
    "get_gate_decision",
    "load_policies",
    "load_policy",
    "retry_gate_actions",
    "unreadable_checks",
]


@dataclass(frozen=True)
class GateRequest:
    """What a pipeline asks a gate about: the deployment and service, the idempotency key (default
    `{gate}:{deployment_id}`, else a new one), canary scopes, and parameters for the policy's actions."""

    deployment_id: str | None = None
    service: str | None = None
    key: str | None = None
    baseline: str | None = None
    canary: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def key_for(self, gate: str) -> str | None:
        """The idempotency key for `gate`: the given key, else `{gate}:{deployment_id}`, else None."""
        return self.key or (f"{gate}:{self.deployment_id}" if self.deployment_id else None)


@dataclass(frozen=True)
class _Evidence:
    """The gate checks' evidence from the services, with the store and configuration in use."""

    engine: Engine
    config: Config
    now: datetime

    def canary(
        self,
        config: CanaryConfig,
        source: SampleSource,
        window: tuple[datetime, datetime] | None,
        deployment_id: str | None,
        sequence: str | None = None,
    ) -> CanaryOutcome:
        return canary_service.run_canary(
            self.engine,
            self.config,
            config,
            source,
            window=window,
            deployment_id=deployment_id,
            sequence=sequence,
            at=self.now,
        )

    def slo(self, spec: SloSpec, at: datetime) -> SloStatus:
        return slos.slo_status(self.config, spec, at)

    def dora(self, window: Window, scope: Scope) -> dict[str, Any]:
        return delivery.dora_report(self.engine, self.config, window, scope)


def load_policy(path: str | Path) -> Policy:
    """A gate policy file; paths inside it are relative to it. PolicyError names the file's field."""
    return service.load_policy(path)


def load_policies(folder: str | Path | None) -> dict[str, Policy]:
    """Every policy of a folder by gate name (what `gatewatch serve` and the Lambda handler serve)."""
    return service.load_policies(folder)


def evaluate_gate(
    engine: Engine,
    config: Config,
    policy: Policy,
    request: GateRequest | None = None,
    *,
    now: datetime | None = None,
    clients: Callable[[str, str | None], Any] | None = None,
) -> StoredDecision:
    """The gate's decision for the request: the stored one when final (promote, rollback) for its key,
    else made now from the policy's checks and stored (a hold is the key's next attempt), running the
    policy's actions once, for the call that made the decision."""
    request = request or GateRequest()
    given = request.key_for(policy.name)
    key = given or f"{policy.name}:{uuid.uuid4()}"
    now = now or utcnow()
    ctx = Context(
        engine,
        _Evidence(engine, config, now),
        now,
        request.deployment_id,
        request.service,
        request.baseline,
        request.canary,
        dict(request.params),
        given,
        Notifier(engine, config, clients),
    )
    return service.evaluate(policy, ctx, key, clients=clients)


def retry_gate_actions(
    engine: Engine,
    config: Config,
    policy: Policy,
    key: str,
    params: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
    clients: Callable[[str, str | None], Any] | None = None,
) -> RetryReport:
    """Re-attempt the failed actions of the latest decision under `key` that have attempts left (the policy's
    actions_max_attempts or an action's max_attempts); `params` add to those the earlier attempt was given.
    ConfigError when no decision has the key or `policy` is not the decision's gate."""
    stored = get_decision(engine, key=key)
    if stored is None:
        raise ConfigError(f"KEY {key!r}: no gate decision has this idempotency key; check the key (gate check --key)")
    if stored.gate != policy.name:
        raise ConfigError(
            f"--policy: the decision under {key!r} is gate {stored.gate!r}, the policy is {policy.name!r}; "
            "pass that gate's policy file"
        )
    now = now or utcnow()
    ctx = Context(
        engine,
        _Evidence(engine, config, now),
        now,
        stored.deployment_id,
        stored.service,
        params=dict(params or {}),
        key=key,
        notifier=Notifier(engine, config, clients),
    )
    return retry_failed(policy, stored, ctx, clients)


def get_gate_decision(engine: Engine, decision_id: str) -> StoredDecision | None:
    """A stored decision by id."""
    return get_decision(engine, decision_id=decision_id)


def describe_gates(policies: dict[str, Policy]) -> list[dict[str, Any]]:
    """The gates served, by name: each one's checks (name, type, on_fail, on_missing_data) and actions."""
    return [
        {
            "name": p.name,
            "on_missing_data": p.on_missing_data,
            "checks": [
                {"name": c.name, "type": c.type, "on_fail": c.on_fail, "on_missing_data": c.on_missing_data}
                for c in p.checks
            ],
            "actions": [a.type for a in p.actions],
        }
        for p in sorted(policies.values(), key=lambda p: p.name)
    ]


def gate_decisions_between(
    engine: Engine, start: datetime, end: datetime, scope: Scope | None = None, limit: int = 500
) -> pd.DataFrame:
    """The audit log: decisions made in [start, end) for the scope's services, newest first, with their
    checks, reasons, actions and evidence parsed."""
    import json

    frame = load_gate_decisions(engine, start, end, scope or Scope(), limit)
    for column, empty in (("checks", "[]"), ("reasons", "[]"), ("actions", "[]"), ("evidence", "{}")):
        frame[column] = [json.loads(v or empty) for v in frame[column]]
    return frame


def unreadable_checks(decision: StoredDecision) -> dict[str, list[str]]:
    """The checks that hold because their telemetry could not be read (an outage, not merely no data),
    with why: what tells a pipeline to report "system unavailable" rather than "failed"."""
    return {
        c["name"]: list((c.get("evidence") or {})[UNAVAILABLE])
        for c in decision.checks
        if c.get("status") == "nodata" and c.get("effect") == "hold" and (c.get("evidence") or {}).get(UNAVAILABLE)
    }
