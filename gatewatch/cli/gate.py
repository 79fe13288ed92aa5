"""`gatewatch gate check`: may this deployment go on? promote, hold or roll back, with reasons."""

from __future__ import annotations

import click

from gatewatch import api
from gatewatch.errors import ConfigError

from .common import State, echo_json, pass_state

EXIT = {"promote": 0, "rollback": 1, "hold": 3}


@click.group()
def gate() -> None:
    """Deployment gates: decide promote, hold or rollback from a policy."""


@gate.command("check")
@click.option("--policy", "policy_path", required=True, metavar="FILE", help="Gate policy (YAML).")
@click.option("--deployment", metavar="ID", help="The deployment being gated.")
@click.option("--service", help="The service (for DORA guards).")
@click.option("--key", metavar="KEY", help="Idempotency key (default: gate name and --deployment).")
@click.option("--baseline", metavar="MATCHERS", help="Canary baseline scope for Prometheus canary checks.")
@click.option("--canary", "canary_scope", metavar="MATCHERS", help="Canary scope for Prometheus canary checks.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter for the policy's actions, e.g. codedeploy_deployment_id=d-ABC123 or "
    "pipeline_execution_id=... (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@pass_state
def check(
    state: State,
    policy_path: str,
    deployment: str | None,
    service: str | None,
    key: str | None,
    baseline: str | None,
    canary_scope: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Evaluate the policy's checks and answer promote (exit 0), rollback (exit 1) or hold (exit 3);
    2 for usage or configuration errors. A retry with the same key returns the stored decision.
    Missing data never promotes unless the policy says `ignore`. The policy's actions run once, for the
    call that decides; a failed one prints ACTION FAILED on stderr and the exit code stays the decision's."""
    given = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE, e.g. codedeploy_deployment_id=d-ABC123")
        given[name.strip()] = value
    policy = api.load_policy(policy_path)
    request = api.GateRequest(deployment, service, key, baseline, canary_scope, given)
    stored = api.evaluate_gate(state.engine, state.config, policy, request)
    decision = stored.to_dict()
    api.write_step_outputs(decision, state.config.github_actions)
    if as_json:
        echo_json(decision)
    else:
        for c in decision["checks"]:
            click.echo(f"  {c['status']:<6} {c['name']:<14} {c['effect']:<8} {c['reason']}")
        click.echo(
            f"decision: {stored.decision.upper()}"
            + (" (stored earlier for this key)" if not stored.first else "")
            + f", id {stored.id}"
        )
        for a in decision["actions"]:
            click.echo(
                f"  action {a['status']:<6} {a['type']:<21} {a.get('target') or '-'}: "
                f"{a.get('detail') or a.get('error')}"
            )
    for a in decision["actions"]:
        if a["status"] != "ok":  # loud whatever the output format; the exit code stays the decision's
            click.echo(
                f"ACTION FAILED{'' if stored.first else ' (earlier, not retried)'}: {a['type']} "
                f"{a.get('target') or '-'}: {a.get('error')}",
                err=True,
            )
    raise SystemExit(EXIT[stored.decision])
