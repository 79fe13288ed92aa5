"""The checks a gate policy can run, each answering pass, fail or nodata with a reason and evidence.

A check gets its evidence (a judged canary run, an SLO's status, a DORA report) from `ctx.evidence`:
the service layer's one implementation of each figure, with the store and the configuration in use
(`gatewatch.services.gates` wires it). A check that cannot read its data answers `nodata` (the policy
decides what that means), never pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from analysis.canary import CanaryConfig, config_from_mapping
from analysis.slo import SloSpec, SloStatus
from analysis.windows import Window, window_since
from collector.canary_runs import CanaryOutcome
from collector.config import read_yaml
from collector.gate_decisions import StoredDecision
from collector.loaders import Scope
from collector.telemetry import CloudWatchSamples, CsvSamples, PrometheusSamples, SampleSource
from collector.telemetry.sli import load_slo
from gatewatch.errors import CanaryConfigError, ConfigError, PolicyError, SourceUnavailable

from .policy import CanaryCheck, Check, DoraCheck, ErrorBudgetCheck, Policy

__all__ = ["UNAVAILABLE", "Context", "Evidence", "run_check"]


class Evidence(Protocol):
    """Where a gate's checks get their figures (one implementation each, in the service layer)."""

    def canary(
        self,
        config: CanaryConfig,
        source: SampleSource,
        window: tuple[datetime, datetime] | None,
        deployment_id: str | None,
        sequence: str | None = None,
    ) -> CanaryOutcome:
        """Read, judge and store a canary run (a sequential config: the next look of `sequence`)."""

    def slo(self, spec: SloSpec, at: datetime) -> SloStatus:
        """An SLO's status at `at`; SourceUnavailable when its SLI cannot be read."""

    def dora(self, window: Window, scope: Scope) -> dict[str, Any]:
        """The DORA report (`gatewatch dora --json`) with the configured benchmark and link window."""


class DecisionNotifier(Protocol):
    """Tells the configured channels about a decision just made (`gates.notify.Notifier`)."""

    def decision(self, stored: StoredDecision) -> list[dict[str, Any]]:
        """Notify a rollback or hold and the decision's failed actions; never raises."""

    def retried(self, stored: StoredDecision, positions: list[int]) -> list[dict[str, Any]]:
        """Notify the re-attempted actions (at `positions`) that failed again; never raises."""


@dataclass(frozen=True)
class Context:
    """What an evaluation knows: the store (for decisions), where evidence comes from, the time, the
    deployment and service, canary scopes, and the caller's parameters (e.g. a CodeDeploy deployment
    id or pipeline execution id for actions)."""

    engine: Engine
    evidence: Evidence
    now: datetime
    deployment_id: str | None = None
    service: str | None = None
    baseline: str | None = None
    canary: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # the decision's idempotency key when the caller gave one (stable across calls)
    notifier: DecisionNotifier | None = None  # tells the configured channels about the decision (gates.notify)


Outcome = tuple[str, str, dict[str, Any]]  # status, reason, evidence
# Evidence key of a nodata outcome whose source could not be read (an outage, not merely no data).
UNAVAILABLE = "unavailable"


def deploy_window(policy: Policy, check: Check, ctx: Context) -> Outcome:
    window = check.deploy_window
    assert window is not None
    allowed, reason = window.check(ctx.now)
    return ("pass" if allowed else "fail"), reason, {"timezone": window.timezone}


def _canary_config(policy: Policy, relative: str) -> CanaryConfig:
    try:
        raw = read_yaml(policy.path(relative), "canary config")
        return config_from_mapping(raw)
    except CanaryConfigError as exc:
        raise PolicyError(f"canary config {relative!r}: {exc}") from None
    except ConfigError as exc:
        raise PolicyError(f"{exc} (paths are relative to the policy file)") from None


def _sample_source(policy: Policy, settings: CanaryCheck, ctx: Context) -> tuple[SampleSource, timedelta | None]:
    """Where the canary's samples come from, and the window before now they cover (none for a CSV file)."""
    if settings.data is not None:
        return CsvSamples(policy.path(settings.data)), None
    server = settings.prometheus or settings.cloudwatch
    assert server is not None
    baseline, canary_scope = ctx.baseline or server.baseline, ctx.canary or server.canary
    kind = "prometheus" if settings.prometheus else "cloudwatch"
    if not (baseline and canary_scope):
        raise PolicyError(
            f"canary.{kind}: expected {'url, ' if kind == 'prometheus' else ''}baseline and "
            "canary (or scopes in the request)"
        )
    if settings.prometheus is not None:
        return PrometheusSamples(
            settings.prometheus.url, baseline, canary_scope, settings.prometheus.step
        ), settings.prometheus.window
    assert settings.cloudwatch is not None
    return CloudWatchSamples(
        baseline, canary_scope, settings.cloudwatch.step, settings.cloudwatch.region, where="canary.cloudwatch."
    ), settings.cloudwatch.window


def canary(policy: Policy, check: Check, ctx: Context) -> Outcome:
    settings = check.canary
    assert settings is not None
    config = _canary_config(policy, settings.config)
    if settings.mode is not None and settings.mode != config.mode:
        try:  # validated again: shape tests, for one, are refused in mode: sequential
            config = config_from_mapping({**config.to_dict(), "mode": settings.mode})
        except CanaryConfigError as exc:
            raise PolicyError(f"canary config {settings.config!r} with mode: {settings.mode}: {exc}") from None
    source, span = _sample_source(policy, settings, ctx)
    window = (ctx.now - span, ctx.now) if span is not None else None
    sequence = None
    if config.mode == "sequential":
        if not ctx.key:
            return "nodata", "a sequential canary needs a stable key: give the request a key or deployment_id", {}
        sequence, window = f"{ctx.key}/{check.name}", None  # a sequence reads from its own start
    try:
        outcome = ctx.evidence.canary(config, source, window, ctx.deployment_id, sequence)
    except ConfigError as exc:
        raise PolicyError(str(exc)) from None
    verdict, telemetry = outcome.verdict, outcome.telemetry
    status = {"pass": "pass", "fail": "fail", "marginal": "fail", "nodata": "nodata", "continue": "continue"}[
        verdict.verdict
    ]
    score = "n/a" if verdict.score is None else f"{verdict.score:.1f}"
    reason = f"canary {verdict.verdict} (score {score})" + (f": {verdict.reasons[0]}" if verdict.reasons else "")
    evidence: dict[str, Any] = {
        "canary_run_id": outcome.run_id,
        "canary_score": verdict.score,
        "canary_verdict": verdict.verdict,
    }
    if verdict.sequence is not None:
        evidence["canary_sequence"] = sequence
        evidence["canary_look"] = verdict.sequence.get("look")
    if telemetry.unavailable:
        evidence[UNAVAILABLE] = [telemetry.errors[name] for name in sorted(telemetry.unavailable)]
    return status, reason, evidence


def _slo(policy: Policy, relative: str, ctx: Context) -> tuple[SloSpec, SloStatus | None, str | Exception | None]:
    """The SLO's status at ctx.now, or (None, why) when its telemetry cannot be read; a bad SLO file is
    a policy error."""
    try:
        spec = load_slo(policy.path(relative))
    except ConfigError as exc:
        raise PolicyError(f"slo {relative!r}: {exc}") from None
    try:
        return spec, ctx.evidence.slo(spec, ctx.now), None
    except SourceUnavailable as exc:  # the SLI's server or data file, not the policy: no data, never pass
        return spec, None, exc
    except ConfigError as exc:  # e.g. the SLI CSV cannot be parsed: no data, never pass
        return spec, None, str(exc)


def _slo_nodata(spec: SloSpec, state: SloStatus | None, problem: str | Exception | None) -> Outcome:
    """No data: the SLI could not be read (`problem`), is stale, has gaps, or holds no events."""
    evidence: dict[str, Any] = {UNAVAILABLE: [str(problem)]} if isinstance(problem, Exception) else {}
    why = problem or (state and (state.stale or state.gaps or state.reason)) or "no SLI data"
    if state is not None and state.newest is not None:
        evidence["sli_newest"] = state.newest.isoformat()
    return "nodata", f"SLO {spec.service}/{spec.name}: {why}", evidence


def _slo_evidence(spec: SloSpec, state: SloStatus) -> dict[str, Any]:
    return {
        "slo": f"{spec.service}/{spec.name}",
        "sli": state.sli,
        "error_budget_remaining": state.budget_remaining,
        "sli_newest": state.newest.isoformat() if state.newest else None,
    }


def error_budget(policy: Policy, check: Check, ctx: Context) -> Outcome:
    settings = check.error_budget
    assert isinstance(settings, ErrorBudgetCheck)
    spec, state, problem = _slo(policy, settings.slo, ctx)
    if state is None or state.budget_remaining is None or state.stale:
        return _slo_nodata(spec, state, problem)
    minimum = settings.min_remaining
    reason = (
        f"error budget {state.budget_remaining:.1%} remaining of SLO {spec.service}/{spec.name} "
        f"(at least {minimum:.0%} required)"
    )
    return ("pass" if state.budget_remaining >= minimum else "fail"), reason, _slo_evidence(spec, state)


def burn_rate(policy: Policy, check: Check, ctx: Context) -> Outcome:
    assert check.burn_rate is not None
    spec, state, problem = _slo(policy, check.burn_rate.slo, ctx)
    if state is None or state.total <= 0 or state.stale or state.gaps:
        return _slo_nodata(spec, state, problem)
    evidence = {**_slo_evidence(spec, state), "burn_rates": [a.to_dict() for a in state.alerts]}
    firing = state.firing
    if firing:
        a = firing[0].to_dict()
        return (
            "fail",
            (
                f"burn rate {a['long_burn_rate']:.1f}x over {a['long_window']} and "
                f"{a['short_burn_rate']:.1f}x over {a['short_window']} exceed {a['threshold']}x "
                f"({a['severity']}) for SLO {spec.service}/{spec.name}"
            ),
            evidence,
        )
    return "pass", f"no burn-rate alert firing for SLO {spec.service}/{spec.name}", evidence


# The report's part and field for each metric a dora check can guard.
DORA_FIELDS = {
    "change_failure_rate": ("change_failure_rate", "rate"),
    "lead_time": ("lead_time", "median_hours"),
    "recovery_time": ("recovery_time", "median_hours"),
}


def dora_guard(policy: Policy, check: Check, ctx: Context) -> Outcome:
    settings = check.dora
    assert isinstance(settings, DoraCheck)
    days = max(int(settings.since / timedelta(days=1)), 1)
    window = window_since(days, ctx.now)
    service = settings.service or ctx.service
    report = ctx.evidence.dora(window, Scope(service=service))
    part, field_name = DORA_FIELDS[settings.metric]
    value = report[part][field_name]
    if value is None:
        return "nodata", f"{settings.metric}: {report[part].get('reason')}", {}
    tier = report[part].get("tier")
    reason = (
        f"{settings.metric} {value:g} over {days} days for {service or 'all services'} (at most "
        f"{settings.max:g}; tier {tier or 'n/a'} by {report['benchmark']}, incidents linked within "
        f"{report['link_window_hours']:g} h)"
    )
    evidence = {
        settings.metric: value,
        "tier": tier,
        "benchmark": report["benchmark"],
        "link_window_hours": report["link_window_hours"],
    }
    return ("pass" if value <= settings.max else "fail"), reason, evidence


EVALUATORS = {
    "deploy_window": deploy_window,
    "canary": canary,
    "error_budget": error_budget,
    "burn_rate": burn_rate,
    "dora": dora_guard,
}


def run_check(policy: Policy, check: Check, ctx: Context) -> Outcome:
    """Evaluate one check; outside failures (unreachable telemetry, bad data) become nodata with the error."""
    try:
        return EVALUATORS[check.type](policy, check, ctx)
    except ConfigError:
        raise
    except Exception as exc:
        reason = f"could not evaluate: {exc.__class__.__name__}: {exc}"[:400]
        return "nodata", reason, {UNAVAILABLE: [reason]}
