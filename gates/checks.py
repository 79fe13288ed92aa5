"""The checks a gate policy can run, each answering pass, fail or nodata with a reason and evidence.

Each check composes the packages: telemetry and loaders from `collector`, verdicts from `analysis`.
A check that cannot read its data answers `nodata` (the policy decides what that means), never pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from collector.config import read_yaml
from sqlalchemy import Engine

from analysis import dora
from analysis.canary import CanaryConfigError, config_from_mapping, judge
from analysis.windows import window_since
from collector.errors import ConfigError
from collector.loaders import Scope, load_dora_frames
from collector.timeutil import parse_duration

from .policy import Check, Policy, PolicyError


@dataclass(frozen=True)
class Context:
    """What an evaluation knows: the store, the time, the deployment and service, canary scopes, and
    the caller's parameters (e.g. a CodeDeploy deployment id or pipeline execution id for actions)."""

    engine: Engine
    now: datetime
    deployment_id: str | None = None
    service: str | None = None
    baseline: str | None = None
    canary: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


Outcome = tuple[str, str, dict[str, Any]]  # status, reason, evidence
# Evidence key of a nodata outcome whose source could not be read (an outage, not merely no data).
UNAVAILABLE = "unavailable"


def _yaml(policy: Policy, relative: str, what: str) -> Any:
    try:
        return read_yaml(policy.path(relative), what)
    except ConfigError as exc:
        raise PolicyError(f"{exc} (paths are relative to the policy file)") from None


def deploy_window(policy: Policy, check: Check, ctx: Context) -> Outcome:
    allowed, reason = check.window.check(ctx.now)
    return ("pass" if allowed else "fail"), reason, {"timezone": check.window.timezone}


def canary(policy: Policy, check: Check, ctx: Context) -> Outcome:
    from collector.canary_runs import save_run
    from collector.telemetry import from_csv

    try:
        config = config_from_mapping(_yaml(policy, check.settings["config"], "canary config"))
    except CanaryConfigError as exc:
        raise PolicyError(f"canary config {check.settings['config']!r}: {exc}") from None
    window = baseline = canary_scope = None
    if "data" in check.settings:
        telemetry, source = from_csv(policy.path(check.settings["data"])), "csv"
    else:
        source = "prometheus" if "prometheus" in check.settings else "cloudwatch"
        settings = check.settings[source]
        baseline = ctx.baseline or settings.get("baseline")
        canary_scope = ctx.canary or settings.get("canary")
        if not (baseline and canary_scope) or (source == "prometheus" and not settings.get("url")):
            raise PolicyError(f"canary.{source}: expected {'url, ' if source == 'prometheus' else ''}baseline and "
                              "canary (or scopes in the request)")
        window = (ctx.now - parse_duration(str(settings.get("window", "30m"))), ctx.now)
        if source == "prometheus":
            from collector.telemetry import prometheus

            telemetry = prometheus.fetch(config, settings["url"], baseline, canary_scope, *window,
                                         step=str(settings.get("step", "30s")))
        else:
            from collector.telemetry import cloudwatch

            where = "canary.cloudwatch"
            try:
                scopes = (cloudwatch.dimensions(baseline, f"{where}.baseline"),
                          cloudwatch.dimensions(canary_scope, f"{where}.canary"))
                period = cloudwatch.period_seconds(str(settings.get("step", "60s")), f"{where}.step")
                client = cloudwatch.connect(settings.get("region"))
            except ConfigError as exc:
                raise PolicyError(str(exc)) from None
            telemetry = cloudwatch.fetch(config, client, *scopes, *window, period)
    verdict = judge(config, telemetry.samples, telemetry.errors)
    run_id = save_run(ctx.engine, config, verdict, telemetry.samples, source, deployment_id=ctx.deployment_id,
                      window=window, baseline_scope=baseline, canary_scope=canary_scope)
    status = {"pass": "pass", "fail": "fail", "marginal": "fail", "nodata": "nodata"}[verdict.verdict]
    score = "n/a" if verdict.score is None else f"{verdict.score:.1f}"
    reason = f"canary {verdict.verdict} (score {score})" + (f": {verdict.reasons[0]}" if verdict.reasons else "")
    evidence = {"canary_run_id": run_id, "canary_score": verdict.score, "canary_verdict": verdict.verdict}
    if telemetry.unavailable:
        evidence[UNAVAILABLE] = [telemetry.errors[name] for name in sorted(telemetry.unavailable)]
    return status, reason, evidence


def _slo(policy: Policy, check: Check, ctx: Context):
    """The SLO's status at ctx.now, or (None, why) when its telemetry cannot be read; a bad SLO file is
    a policy error."""
    from collector.errors import SourceUnavailable
    from collector.telemetry.sli import load_slo, slo_status

    relative = check.settings["slo"]
    try:
        spec = load_slo(policy.path(relative))
    except ConfigError as exc:
        raise PolicyError(f"slo {relative!r}: {exc}") from None
    try:
        return spec, slo_status(spec, ctx.now), None
    except SourceUnavailable as exc:  # the SLI's server, not the policy: no data, never pass
        return spec, None, exc
    except ConfigError as exc:  # e.g. the SLI CSV is missing: no data, never pass
        return spec, None, str(exc)


def _slo_nodata(spec, state, problem) -> Outcome:
    evidence = {UNAVAILABLE: [str(problem)]} if isinstance(problem, Exception) else {}
    return "nodata", f"SLO {spec.service}/{spec.name}: {problem or state.reason}", evidence


def _slo_evidence(spec, state) -> dict[str, Any]:
    return {"slo": f"{spec.service}/{spec.name}", "sli": state.sli, "error_budget_remaining": state.budget_remaining}


def error_budget(policy: Policy, check: Check, ctx: Context) -> Outcome:
    spec, state, problem = _slo(policy, check, ctx)
    if state is None or state.budget_remaining is None:
        return _slo_nodata(spec, state, problem)
    minimum = float(check.settings.get("min_remaining", 0))
    reason = (f"error budget {state.budget_remaining:.1%} remaining of SLO {spec.service}/{spec.name} "
              f"(at least {minimum:.0%} required)")
    return ("pass" if state.budget_remaining >= minimum else "fail"), reason, _slo_evidence(spec, state)


def burn_rate(policy: Policy, check: Check, ctx: Context) -> Outcome:
    spec, state, problem = _slo(policy, check, ctx)
    if state is None or state.total <= 0:
        return _slo_nodata(spec, state, problem)
    evidence = {**_slo_evidence(spec, state), "burn_rates": [a.to_dict() for a in state.alerts]}
    firing = state.firing
    if firing:
        a = firing[0].to_dict()
        return "fail", (f"burn rate {a['long_burn_rate']:.1f}x over {a['long_window']} and "
                        f"{a['short_burn_rate']:.1f}x over {a['short_window']} exceed {a['threshold']}x "
                        f"({a['severity']}) for SLO {spec.service}/{spec.name}"), evidence
    return "pass", f"no burn-rate alert firing for SLO {spec.service}/{spec.name}", evidence


def dora_guard(policy: Policy, check: Check, ctx: Context) -> Outcome:
    metric = check.settings["metric"]
    fields = {"change_failure_rate": ("change_failure_rate", "rate"),
              "lead_time": ("lead_time", "median_hours"), "recovery_time": ("recovery_time", "median_hours")}
    if metric not in fields:
        raise PolicyError(f"dora.metric: expected one of {', '.join(fields)}, got {metric!r}")
    days = int(parse_duration(str(check.settings.get("since", "30d"))) / timedelta(days=1))
    window = window_since(max(days, 1), ctx.now)
    service = check.settings.get("service") or ctx.service
    frames = load_dora_frames(ctx.engine, window.start, window.end, Scope(service=service))
    report = dora.report(frames, window)
    key, field_name = fields[metric]
    value = report[key][field_name]
    if value is None:
        return "nodata", f"{metric}: {report[key].get('reason')}", {}
    limit = float(check.settings["max"])
    reason = f"{metric} {value:g} over {days} days for {service or 'all services'} (at most {limit:g})"
    return ("pass" if value <= limit else "fail"), reason, {metric: value}


EVALUATORS: dict[str, Callable[[Policy, Check, Context], Outcome]] = {
    "deploy_window": deploy_window, "canary": canary, "error_budget": error_budget, "burn_rate": burn_rate,
    "dora": dora_guard,
}


def run_check(policy: Policy, check: Check, ctx: Context) -> Outcome:
    """Evaluate one check; outside failures (unreachable telemetry, bad data) become nodata with the error."""
    try:
        return EVALUATORS[check.type](policy, check, ctx)
    except (PolicyError, ConfigError):
        raise
    except Exception as exc:  # noqa: BLE001 - a check that cannot run has no data: the policy decides
        reason = f"could not evaluate: {exc.__class__.__name__}: {exc}"[:400]
        return "nodata", reason, {UNAVAILABLE: [reason]}
