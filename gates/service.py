"""Evaluate a gate policy into a stored decision: run every check, combine their effects, record the
decision under its idempotency key (a retry returns the stored decision and never acts twice)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.config import read_yaml
from collector.gate_decisions import StoredDecision, get_decision, record_actions, record_decision
from gatewatch.errors import ConfigError, PolicyError

from .actions import run_actions, triggered
from .checks import Context, run_check
from .policy import CheckResult, Policy, decide, effect_of, policy_from_mapping
from .retries import retry_failed


def load_policy(path: str | Path) -> Policy:
    """A policy from a YAML file; paths inside it are relative to the file."""
    try:
        raw = read_yaml(path, "policy")
    except ConfigError as exc:
        raise PolicyError(str(exc)) from None
    if raw is None:
        raise PolicyError(f"policy {str(path)!r}: the file is empty; expected a mapping with 'name' and 'checks'")
    try:
        return policy_from_mapping(raw, base_dir=Path(path).resolve().parent)
    except PolicyError as exc:
        raise PolicyError(f"policy {str(path)!r}: {exc}") from None


def load_policies(directory: str | Path | None) -> dict[str, Policy]:
    """Every policy in a folder (`*.yaml`, `*.yml`), by gate name: what the HTTP API and Lambda serve.

    A file that does not validate raises PolicyError naming the file, so a service never starts
    with a gate silently missing."""
    if not directory:
        raise PolicyError(
            "gate policies: set GATEWATCH_GATE_POLICIES (or gates.policies in gatewatch.yaml) "
            "to the folder of gate policy files"
        )
    folder = Path(directory)
    if not folder.is_dir():
        raise PolicyError(f"gate policies {str(directory)!r}: no such folder")
    policies: dict[str, Policy] = {}
    for file in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        policy = load_policy(file)  # a PolicyError names the file
        if policy.name in policies:
            raise PolicyError(f"{file.name}: gate name {policy.name!r} is already used by another file")
        policies[policy.name] = policy
    return policies


def evaluate(
    policy: Policy, ctx: Context, key: str, *, clients: Callable[[str, str | None], Any] | None = None
) -> StoredDecision:
    """The decision for `key`: the stored one when final (promote, rollback), else made now and stored.

    A stored `hold` is asked again: the new evaluation is the key's next attempt. The call that makes
    a decision runs the policy's actions for it (`gates.actions`; `clients(service, region)` gives the
    boto3 clients, default a fresh session's) and records each outcome with the decision; a later call
    with the key re-attempts the stored decision's failed actions that have attempts left (`gates.retries`)."""
    stored = get_decision(ctx.engine, key=key)
    if stored is not None and stored.decision != "hold":
        if stored.gate == policy.name and any(a.get("status") != "ok" for a in stored.actions):
            retry_failed(policy, stored, ctx, clients)
        return stored
    attempt = stored.attempt + 1 if stored is not None else 1
    results = []
    evidence: dict = {}
    for check in policy.checks:
        status, reason, found = run_check(policy, check, ctx)
        results.append(CheckResult(check.name, status, effect_of(check, status), reason, found))
        evidence.update(found)
    decision, reasons = decide(results)
    stored = record_decision(
        ctx.engine,
        key,
        policy.name,
        decision,
        [r.to_dict() for r in results],
        reasons,
        attempt=attempt,
        deployment_id=ctx.deployment_id,
        service=ctx.service,
        evidence=evidence,
    )
    to_run = triggered(policy, stored)
    if to_run:  # recorded after each action, so an interrupted run still shows what was done
        stored.actions = run_actions(
            to_run,
            stored,
            ctx,
            clients,
            progress=lambda done: record_actions(ctx.engine, stored.id, done),
            max_attempts=policy.max_attempts,
        )
    if ctx.notifier is not None:  # a rollback or hold this call made, and its failed actions
        ctx.notifier.decision(stored)
    return stored
