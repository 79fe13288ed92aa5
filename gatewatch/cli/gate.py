"""`gatewatch gate check`: may this deployment go on? promote, hold or roll back, with reasons."""

from __future__ import annotations

import click

from gatewatch import api
from gatewatch.errors import ConfigError

from .common import State, echo_json, pass_state

EXIT = {"promote": 0, "rollback": 1, "hold": 3}
PARAM_HELP = (
    "A parameter for the policy's actions, e.g. codedeploy_deployment_id=d-ABC123 or "
    "pipeline_execution_id=... (repeatable)."
)


def _params(params: tuple[str, ...]) -> dict[str, str]:
    given = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE, e.g. codedeploy_deployment_id=d-ABC123")
        given[name.strip()] = value
    return given


def _echo_action(a: dict) -> None:
    attempt = f" (attempt {a['attempt']} of {a['max_attempts']})" if a.get("attempt", 1) > 1 else ""
    click.echo(
        f"  action {a['status']:<6} {a['type']:<21} {a.get('target') or '-'}: "
        f"{a.get('detail') or a.get('error')}{attempt}"
    )


def _failed_note(a: dict, first: bool) -> str:
    """How often a failed action was attempted, and whether a later call will try it again."""
    if "attempt" not in a:
        return "" if first else " (earlier, not retried)"
    left = a["max_attempts"] - a["attempt"]
    return f" (attempt {a['attempt']} of {a['max_attempts']}" + ("; no attempts left)" if left <= 0 else ")")


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
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help=PARAM_HELP)
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
    Missing data never promotes unless the policy says `ignore`. The policy's actions run for the call
    that decides; a failed one prints ACTION FAILED on stderr and the exit code stays the decision's, and a
    later call with the key re-attempts it (up to the policy's actions_max_attempts, default 3)."""
    given = _params(params)
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
            _echo_action(a)
    for a in decision["actions"]:
        if a["status"] != "ok":  # loud whatever the output format; the exit code stays the decision's
            click.echo(
                f"ACTION FAILED{_failed_note(a, stored.first)}: {a['type']} {a.get('target') or '-'}: {a.get('error')}",
                err=True,
            )
    raise SystemExit(EXIT[stored.decision])


@gate.command("retry-actions")
@click.argument("key")
@click.option("--policy", "policy_path", required=True, metavar="FILE", help="The decision's gate policy (YAML).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help=PARAM_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print what was retried and the actions as JSON.")
@pass_state
def retry_actions(state: State, key: str, policy_path: str, params: tuple[str, ...], as_json: bool) -> None:
    """Re-attempt the failed actions of the decision stored under KEY (never an ok one), each up to its
    max_attempts in all. Exit 0: every action is ok now; 1: an action is still failed; 2: usage error, no
    decision under KEY, or the policy is another gate's; 3: nothing was retried (no failed action, no
    attempts left, or another caller is running it)."""
    policy = api.load_policy(policy_path)
    report = api.retry_gate_actions(state.engine, state.config, policy, key, _params(params))
    actions = report.actions
    if as_json:
        echo_json(report.to_dict())
    else:
        for a in actions:
            _echo_action(a)
        decision = report.decision.id if report.decision else "-"
        click.echo(f"retried {len(report.retried)} of {len(actions)} action(s) of decision {decision}")
    notes = [(i, "no attempts left") for i in report.exhausted]
    notes += [(i, "being run by another caller") for i in report.busy]
    notes += [(i, "no longer in the policy") for i in report.unmatched]
    for i, why in notes:
        a = actions[i]
        click.echo(f"NOT RETRIED ({why}): {a['type']} {a.get('target') or '-'}: {a.get('error')}", err=True)
    if report.incomplete:
        click.echo("NOT RETRIED: the deciding call has not recorded every action yet", err=True)
    for i in report.retried:
        if actions[i]["status"] != "ok":
            a = actions[i]
            click.echo(
                f"ACTION FAILED{_failed_note(a, False)}: {a['type']} {a.get('target') or '-'}: {a.get('error')}",
                err=True,
            )
    if not report.retried:
        raise SystemExit(3)
    raise SystemExit(0 if all(a["status"] == "ok" for a in actions) else 1)
