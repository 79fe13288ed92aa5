"""The AWS CodePipeline Lambda invoke action for gates: evaluate a gate for the job and report the decision
(success with output variables, failure with reasons, or a continuation while the gate holds).

CodePipeline invokes the function once per job; a continuation is a new job (new id) carrying the
`continuationToken` we returned, so the token carries the idempotency key and the time the gate started
waiting. Lambda may retry an invocation of the same job: the stored decision is reported again and
CodePipeline's InvalidJobStateException tells us the job was already reported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from gatewatch import api
from gatewatch.api import Policy, StoredDecision
from gatewatch.errors import ConfigError, ParameterError, SourceUnavailable, StoreError
from gatewatch.schema import Duration, Model, NonEmpty, validate

log = logging.getLogger(__name__)

# CodePipeline fails a Lambda invoke action that has not finished after 24 hours.
MAX_WAIT_LIMIT = timedelta(hours=24)
# Lengths and patterns from CodePipeline's service model (botocore does not check them client-side).
MESSAGE_MAX = 5000
SUMMARY_MAX = 2048
TOKEN_MAX = 2048
KEY_MAX = 255  # gate_decisions.key
TOKEN_VERSION = 1


class UserParameters(Model):
    """The action's UserParameters: which gate (a name from the policy folder, or a policy file), what it
    is asked about, the idempotency key (default: the job id) and how long a hold may wait."""

    gate: NonEmpty | None = None
    policy: NonEmpty | None = None
    deployment: NonEmpty | None = None
    service: NonEmpty | None = None
    baseline: NonEmpty | None = None
    canary: NonEmpty | None = None
    key: Annotated[NonEmpty, Field(max_length=KEY_MAX)] | None = None
    max_wait: Duration = timedelta(minutes=30)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("max_wait")
    @classmethod
    def _within_a_day(cls, wait: timedelta) -> timedelta:
        if wait > MAX_WAIT_LIMIT:
            raise ValueError(f"at most 24h (CodePipeline fails a Lambda invoke action after 24 hours), got {wait}")
        return wait

    @field_validator("params", mode="before")
    @classmethod
    def _object(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object of parameters for the gate's actions")
        return value

    @model_validator(mode="after")
    def _one_gate(self) -> UserParameters:
        if bool(self.gate) == bool(self.policy):
            raise ValueError(
                "give exactly one of 'gate' (a gate name from GATEWATCH_GATE_POLICIES) or 'policy' (a policy file path)"
            )
        return self


def _default_client():
    import boto3

    return boto3.client("codepipeline")


# The CodePipeline client factory; tests and other runtimes may replace it (or pass `client=`).
client_factory: Callable[[], Any] = _default_client


def handler(event: Mapping[str, Any], context: Any = None, *, client: Any = None) -> dict[str, Any]:
    """Lambda entry point for a CodePipeline Invoke action: decide, report to CodePipeline, return what was
    reported ({job_id, reported: success|continuation|failure|already_reported, decision, ...})."""
    job = _strip_secrets(event)
    job_id = job.get("id")
    if not isinstance(job_id, str) or not job_id:
        log.error("not a CodePipeline job event (no 'CodePipeline.job'.id): nothing to report to")
        return {"job_id": None, "reported": None, "error": "not a CodePipeline job event"}
    client = client or client_factory()
    try:
        request, summary = _decide(job_id, job.get("data") or {})
    except Exception as exc:
        kind, message = _failure_for(exc)
        request, summary = _failure(job_id, kind, message), {"reported": "failure", "failure_type": kind}
    return _report(client, request, {"job_id": job_id} | summary)


def _strip_secrets(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The job, with artifactCredentials removed from the event itself so nothing later can log them."""
    job = event.get("CodePipeline.job") if isinstance(event, Mapping) else None
    if isinstance(job, dict) and isinstance(job.get("data"), dict):
        job["data"].pop("artifactCredentials", None)
    return job if isinstance(job, Mapping) else {}


def _decide(job_id: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Put* request for this job and a summary of it."""
    params = _user_parameters(data)
    max_wait = params.max_wait
    config = api.load_config()
    policy = _policy(params, config)
    now = api.utcnow()
    token = _read_token(data.get("continuationToken"))
    key = token["key"] if token else (params.key or job_id)
    started = datetime.fromisoformat(token["started"]) if token else now
    request = api.GateRequest(params.deployment, params.service, key, params.baseline, params.canary, params.params)
    stored = evaluate_gate(api.open_store(config), config, policy, request, now=now)
    log.info(
        "gate %s, job %s, key %s: %s (decision %s, attempt %d)",
        policy.name,
        job_id,
        key,
        stored.decision,
        stored.id,
        stored.attempt,
    )
    summary = {"key": key, "decision": stored.decision, "decision_id": stored.id, "attempt": stored.attempt}
    if stored.decision == "promote":
        return {
            "jobId": job_id,
            "outputVariables": output_variables(stored),
            "executionDetails": {
                "summary": _clip(
                    f"promote: {'; '.join(stored.reasons)} (gate {stored.gate}, attempt {stored.attempt})", SUMMARY_MAX
                ),
                "externalExecutionId": stored.id,
            },
        }, summary | {"reported": "success"}
    if stored.decision == "rollback":
        message = f"rollback: {'; '.join(stored.reasons)} (gate {stored.gate}, decision {stored.id})"
        return _failure(job_id, "JobFailed", message, stored.id), summary | {
            "reported": "failure",
            "failure_type": "JobFailed",
        }
    waited = now - started
    if waited < max_wait:
        token_text = _write_token(key, started, policy.name)
        return {"jobId": job_id, "continuationToken": token_text}, summary | {"reported": "continuation"}
    unreadable = api.unreadable_checks(stored)
    kind = "SystemUnavailable" if unreadable else "JobFailed"
    reasons = [f"{name}: {'; '.join(why)}" for name, why in unreadable.items()] if unreadable else stored.reasons
    message = (
        f"held: still holding after {_human(waited)} (max_wait {_human(max_wait)}, attempt {stored.attempt}"
        f"{', telemetry could not be read' if unreadable else ''}): {'; '.join(reasons)} "
        f"(gate {stored.gate}, decision {stored.id})"
    )
    return _failure(job_id, kind, message, stored.id), summary | {"reported": "failure", "failure_type": kind}


# The gate evaluation this handler calls (the service API's; a test may replace it).
evaluate_gate: Callable[..., StoredDecision] = api.evaluate_gate


def output_variables(stored: StoredDecision) -> dict[str, str]:
    """The promote call's output variables: `decision`, `decision_id`, `gate`, `attempt`, and the canary's
    `canary_score`, `canary_verdict`, `canary_run_id` when the policy has a canary check."""
    found = {"decision": stored.decision, "decision_id": stored.id, "gate": stored.gate, "attempt": str(stored.attempt)}
    evidence = stored.evidence or {}
    if evidence.get("canary_score") is not None:
        found["canary_score"] = f"{float(evidence['canary_score']):.2f}"
    for name in ("canary_verdict", "canary_run_id"):
        if evidence.get(name):
            found[name] = str(evidence[name])
    return found


def _failure(job_id: str, kind: str, message: str, decision_id: str | None = None) -> dict[str, Any]:
    details = {"type": kind, "message": _clip(message, MESSAGE_MAX)}
    if decision_id:
        details["externalExecutionId"] = decision_id
    return {"jobId": job_id, "failureDetails": details}


def _user_parameters(data: Mapping[str, Any]) -> UserParameters:
    """UserParameters as a validated model; ParameterError names the field and the fix."""
    configuration = (data.get("actionConfiguration") or {}).get("configuration") or {}
    text = configuration.get("UserParameters")
    example = 'e.g. {"gate": "checkout-prod", "deployment": "#{codepipeline.PipelineExecutionId}"}'
    if not isinstance(text, str) or not text.strip():
        raise ParameterError(f"UserParameters: required, a JSON object naming the gate, {example}")
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(
            f"UserParameters: not valid JSON ({exc.msg} at character {exc.pos}); expected a JSON object, {example}"
        ) from None
    if not isinstance(params, dict):
        raise ParameterError(f"UserParameters: expected a JSON object, {example}")
    return validate(UserParameters, params, error=ParameterError, prefix="UserParameters")


def _policy(params: UserParameters, config: api.Config) -> Policy:
    if params.policy:
        return api.load_policy(params.policy)
    policies = api.load_policies(config.gates.policies)
    if params.gate not in policies:
        known = ", ".join(sorted(policies)) or "none"
        raise ParameterError(
            f"UserParameters.gate {params.gate!r}: no such gate in the gate policies folder "
            f"(GATEWATCH_GATE_POLICIES); known gates: {known}"
        )
    return policies[params.gate]


def _write_token(key: str, started: datetime, gate: str) -> str:
    text = json.dumps(
        {"v": TOKEN_VERSION, "key": key, "started": started.isoformat(), "gate": gate}, separators=(",", ":")
    )
    if len(text) > TOKEN_MAX:  # pragma: no cover - keys are at most 255 characters, gate names short
        raise ParameterError(f"continuation token would exceed {TOKEN_MAX} characters: use a shorter key or gate name")
    return text


def _read_token(text: Any) -> dict[str, Any] | None:
    """The state carried from the previous job of this action, or None on the first job."""
    if text is None or text == "":
        return None
    try:
        token = json.loads(text)
        if (
            isinstance(token, dict)
            and token.get("v") == TOKEN_VERSION
            and isinstance(token.get("key"), str)
            and datetime.fromisoformat(token["started"]).tzinfo is not None
        ):
            return token
    except (TypeError, ValueError, KeyError):
        pass
    raise ParameterError(
        "continuationToken: not one this handler issued (it carries a JSON object with the "
        "idempotency key and start time); is another function configured on this action?"
    )


def _failure_for(exc: Exception) -> tuple[str, str]:
    """The failure type and message for an exception (the message never carries the event)."""
    from botocore.exceptions import ConnectionError as AwsConnectionError

    if isinstance(exc, ConfigError):
        log.error("configuration error: %s", exc)
        return "ConfigurationError", f"gate configuration: {exc}"
    if isinstance(exc, StoreError):
        log.error("store unavailable: %s", exc)
        return "SystemUnavailable", f"the Gatewatch store could not be reached: {exc}"
    if isinstance(exc, (SourceUnavailable, ConnectionError, TimeoutError, AwsConnectionError)):
        log.error("outside system unavailable: %s: %s", exc.__class__.__name__, exc)
        return "SystemUnavailable", f"telemetry could not be read: {exc.__class__.__name__}: {exc}"
    log.exception("gate evaluation failed")
    return "JobFailed", (
        f"the gate could not be evaluated ({exc.__class__.__name__}: {exc}); see the function's CloudWatch logs"
    )


def _report(client: Any, request: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Send the result; a job already reported (a retried invocation) is logged, not an error."""
    operation = "put_job_failure_result" if "failureDetails" in request else "put_job_success_result"
    try:
        getattr(client, operation)(**request)
    except client.exceptions.InvalidJobStateException:
        log.warning(
            "job %s was already reported (a retried invocation): %s not sent again", request["jobId"], operation
        )
        return summary | {"reported": "already_reported"}
    if "failureDetails" in request:
        summary["message"] = request["failureDetails"]["message"]
        log.warning("job %s failed (%s): %s", request["jobId"], request["failureDetails"]["type"], summary["message"])
    else:
        log.info("job %s: %s reported", request["jobId"], summary["reported"])
    return summary


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds / 3600:.1f}h"
