"""Actions a gate decision triggers: CodeDeploy StopDeployment (with automatic rollback), CodePipeline
RollbackStage, or a webhook. They run for the call that made the decision (a failed one is re-attempted
by later calls, `gates.retries`); every outcome is returned for the decision's record, and a failure is
loud (status `failed`, an ERROR log line), never swallowed and never raised past the decision that is
already stored."""

from __future__ import annotations

import http.client
import json
import logging
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from collector.codedeploy_ids import find_codedeploy_deployment
from collector.config import environment_variable
from collector.gate_decisions import StoredDecision
from collector.redaction import remember, scrub, scrubbed_traceback
from collector.sources.codepipeline import ROLLBACK_TRIGGERS
from collector.timeutil import utcnow
from gatewatch.errors import ActionFailed
from gatewatch.metrics import count_action

from .checks import Context
from .policy import Action, CodeDeployStop, CodePipelineRollback, Policy

log = logging.getLogger(__name__)

Clients = Callable[[str, "str | None"], Any]  # (service name, region or None) -> a boto3 client

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RETRY_STATUS = {429, 500, 502, 503, 504}
# the caller's parameters the actions read: kept with each outcome, so a later retry has them
ACTION_PARAMS = ("codedeploy_deployment_id", "pipeline_execution_id")


def aws_client(service: str, region: str | None = None) -> Any:
    """A boto3 client with its own session (credentials from the usual AWS chain) and bounded retries."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return boto3.session.Session().client(service, region_name=region, config=config)


def triggered(policy: Policy, stored: StoredDecision) -> list[Action]:
    """The policy's actions this decision runs: only the call that made it (`first`) acts, so a replayed
    decision never acts again; a hold acts on the key's first attempt only (later ones re-ask)."""
    if not stored.first or (stored.decision == "hold" and stored.attempt != 1):
        return []
    return for_decision(policy, stored.decision)


def for_decision(policy: Policy, decision: str) -> list[Action]:
    """The policy's actions a `decision` triggers, in order: the stored outcomes line up with them."""
    return [a for a in policy.actions if decision in a.on]


def run_actions(
    actions: list[Action],
    stored: StoredDecision,
    ctx: Context,
    clients: Clients | None = None,
    progress: Callable[[list[dict]], None] | None = None,
    max_attempts: Callable[[Action], int] | None = None,
) -> list[dict[str, Any]]:
    """Run `actions` in order (one failing does not stop the next); their outcomes, also passed to
    `progress` after each so a caller can record them as they happen. Each is attempt 1 of
    `max_attempts(action)` (default 1)."""
    outcomes: list[dict[str, Any]] = []
    for action in actions:
        limit = max_attempts(action) if max_attempts else 1
        outcomes.append(run_action(action, stored, ctx, clients or aws_client, max_attempts=limit))
        if progress is not None:
            try:
                progress(list(outcomes))
            except Exception:  # recording must not stop the next action (a rollback matters more)
                log.error("could not record the action outcomes of decision %s:\n%s", stored.id, scrubbed_traceback())
    return outcomes


def run_action(
    action: Action,
    stored: StoredDecision,
    ctx: Context,
    clients: Clients,
    *,
    attempt: int = 1,
    max_attempts: int = 1,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One action's outcome: {type, target, status ok|failed, detail or error, attempts (requests sent),
    started_at, seconds, attempt (of max_attempts), params, history (every attempt's outcome, this one last)}."""
    from botocore.exceptions import BotoCoreError, ClientError

    started, clock = utcnow(), time.monotonic()
    target = _target(action, ctx)
    try:
        detail, attempts = RUNNERS[action.type](action, stored, ctx, clients)
        result = {"status": "ok", "detail": detail}
    except ActionFailed as exc:
        result, attempts = {"status": "failed", "error": str(exc)}, exc.attempts
    except ClientError as exc:
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "")
        result = {
            "status": "failed",
            "error": f"{operation}: {error.get('Code', 'Error')}: {error.get('Message') or exc}",
        }
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
    except BotoCoreError as exc:
        result, attempts = {"status": "failed", "error": f"AWS: {exc}"}, 1
    except Exception as exc:  # an action must never undo the decision already stored: record it, loudly
        log.error("action %s for decision %s raised:\n%s", action.type, stored.id, scrubbed_traceback())
        result, attempts = {"status": "failed", "error": scrub(f"{type(exc).__name__}: {exc}")}, 1
    outcome: dict[str, Any] = {
        "type": action.type,
        "target": target,
        **result,
        "attempts": attempts,
        "started_at": started.isoformat(),
        "seconds": round(time.monotonic() - clock, 3),
    }
    outcome["history"] = [
        *(history or []),
        {"attempt": attempt, **{k: v for k, v in outcome.items() if k not in ("type", "target")}},
    ]
    outcome |= {
        "attempt": attempt,
        "max_attempts": max_attempts,
        "params": {name: value for name in ACTION_PARAMS if (value := _param(ctx, name)) is not None},
    }
    count_action(action.type, result["status"])
    if outcome["status"] == "ok":
        log.info(
            "action %s %s for %s decision %s: ok (%s)",
            action.type,
            target,
            stored.decision,
            stored.id,
            outcome["detail"],
        )
    else:
        log.error(
            "action %s %s failed for %s decision %s (key %s), attempt %d of %d: %s",
            action.type,
            target or "-",
            stored.decision,
            stored.id,
            stored.key,
            attempt,
            max_attempts,
            outcome["error"],
        )
    return outcome


def _target(action: Action, ctx: Context) -> str | None:
    s = action.settings
    if isinstance(s, CodeDeployStop):
        return s.deployment_id or _param(ctx, "codedeploy_deployment_id")
    if isinstance(s, CodePipelineRollback):
        return f"{s.pipeline}/{s.stage}"
    return s.url  # as written in the policy: ${VAR} placeholders are not expanded here


def _param(ctx: Context, name: str) -> str | None:
    value = (ctx.params or {}).get(name)
    return str(value) if value not in (None, "") else None


def codedeploy_stop(action: Action, stored: StoredDecision, ctx: Context, clients: Clients) -> tuple[str, int]:
    """StopDeployment with autoRollbackEnabled, so CodeDeploy redeploys the last good revision. The
    deployment id: the policy's, else the caller's parameter, else found in the store for the gated deployment."""
    s = action.codedeploy_stop
    assert s is not None
    deployment = s.deployment_id or _param(ctx, "codedeploy_deployment_id")
    found = None
    if not deployment:
        found = find_codedeploy_deployment(ctx.engine, ctx.deployment_id, ctx.service)
        deployment = found.deployment_id
        if not deployment:
            raise ActionFailed(
                "no CodeDeploy deployment id: set codedeploy_stop.deployment_id in the policy or pass "
                f"the codedeploy_deployment_id parameter ({found.how})"
            )
    response = clients("codedeploy", s.region).stop_deployment(deploymentId=deployment, autoRollbackEnabled=True)
    message = response.get("statusMessage")
    return (
        f"StopDeployment {deployment}: {response.get('status')}"
        + (f" ({message})" if message else "")
        + (f"; deployment id {found.how}" if found else ""),
        _attempts(response),
    )


def codepipeline_rollback(action: Action, stored: StoredDecision, ctx: Context, clients: Clients) -> tuple[str, int]:
    """RollbackStage to the given execution, else to the latest Succeeded execution other than the current."""
    s = action.codepipeline_rollback
    assert s is not None
    client = clients("codepipeline", s.region)
    target, how = s.target_execution_id, "given"
    if not target:
        current = _param(ctx, "pipeline_execution_id")
        target, skipped = _latest_succeeded(client, s.pipeline, current)
        if target is None:
            raise ActionFailed(
                f"no Succeeded execution of {s.pipeline} that is not a rollback to roll back to"
                + (f" other than the current {current}" if current else "")
                + (f" (skipped rollback executions {', '.join(skipped)})" if skipped else "")
            )
        how = (
            "latest Succeeded, not a rollback"
            + (f", current {current}" if current else ", no current execution given")
            + (f", skipped rollback executions {', '.join(skipped)}" if skipped else "")
        )
    response = client.rollback_stage(pipelineName=s.pipeline, stageName=s.stage, targetPipelineExecutionId=target)
    return (
        f"RollbackStage {s.pipeline}/{s.stage} to {target} ({how}): rollback execution "
        f"{response.get('pipelineExecutionId')}",
        _attempts(response),
    )


def _latest_succeeded(client: Any, pipeline: str, current: str | None) -> tuple[str | None, list[str]]:
    """The newest Succeeded execution that is not `current` and not itself a rollback (trigger
    AutomatedRollback/ManualRollback or executionType ROLLBACK: rolling back to one would redeploy
    whatever it restored, not a release), with the rollback executions skipped on the way.
    ListPipelineExecutions lists newest first; a failed execution is never a target."""
    skipped: list[str] = []
    for page in client.get_paginator("list_pipeline_executions").paginate(
        pipelineName=pipeline, PaginationConfig={"PageSize": 100}
    ):
        for summary in page.get("pipelineExecutionSummaries", []):
            execution = summary.get("pipelineExecutionId")
            if summary.get("status") != "Succeeded" or execution == current:
                continue
            trigger = (summary.get("trigger") or {}).get("triggerType")
            if trigger in ROLLBACK_TRIGGERS or summary.get("executionType") == "ROLLBACK":
                skipped.append(execution)
                continue
            return execution, skipped
    return None, skipped


def _attempts(response: dict) -> int:
    return response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to report, not to follow (a POST would be re-sent or turned into a GET)."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _expand(value: str, where: str, what: str = "webhook") -> str:
    """`value` with its ${VAR} placeholders filled from the environment, each value's trailing whitespace
    stripped (a secret mounted from a file ends with a newline) and remembered as a secret (scrubbed from
    every message as `${VAR}`); ActionFailed (nothing sent) naming `what`, `where` and the variable when
    one is not set or holds a line break or other control character."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        found = environment_variable(name)
        if found is None:
            raise ActionFailed(f"{what} {where}: environment variable {name} is not set; nothing was sent", attempts=0)
        remember(found, f"${{{name}}}")
        found = found.rstrip()
        if _CONTROL.search(found):
            raise ActionFailed(
                f"{what} {where}: environment variable {name} holds a line break or another control character "
                "(trailing whitespace is stripped, not inner); nothing was sent",
                attempts=0,
            )
        return found

    expanded = _VAR.sub(one, value)
    if _CONTROL.search(expanded):
        raise ActionFailed(f"{what} {where}: holds a line break or another control character; nothing was sent", 0)
    return expanded


def _checked_url(url: str, written: str, what: str = "webhook") -> str:
    """The expanded `url` when it is a plain http(s) URL; else ActionFailed naming the setting as
    `written` (its ${VAR} placeholders, never their values) and the fix, nothing sent."""
    problem = None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        problem = "is not a valid URL"
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "is not an http:// or https:// URL with a host"
        elif "@" in parts.netloc:
            problem = "holds credentials (user:password@): send them in a header instead (headers: Authorization)"
        elif re.search(r"\s", url):
            problem = "holds whitespace: percent-encode it (%20)"
    if problem:
        raise ActionFailed(f"{what} url {written} {problem}; nothing was sent", attempts=0)
    return url


def webhook(action: Action, stored: StoredDecision, ctx: Context, clients: Clients) -> tuple[str, int]:
    """POST (or PUT/PATCH) the decision JSON; connection errors, 429 and 5xx are retried with exponential
    backoff (or the server's Retry-After), every attempt and wait bounded by max_time."""
    s = action.webhook
    assert s is not None
    url = _checked_url(_expand(s.url, "url"), s.url)
    headers = {"Content-Type": "application/json", "User-Agent": "gatewatch", "Idempotency-Key": stored.id}
    secrets = [(url, s.url)] if url != s.url else []  # (what was sent, what may be shown instead)
    for name, value in s.headers.items():
        headers[name] = _expand(value, f"headers.{name}")
        secrets.append((headers[name], "***"))  # even one written in the policy: only the name is shown
    body = json.dumps(stored.to_dict(), default=str).encode("utf-8")
    return send_http(
        url,
        s.method,
        body,
        headers,
        secrets=secrets,
        retries=s.retries,
        backoff=s.backoff.total_seconds(),
        timeout=s.timeout.total_seconds(),
        max_time=s.max_time.total_seconds(),
        label=f"webhook {s.url}",
    )


def send_http(
    url: str,
    method: str,
    body: bytes,
    headers: dict[str, str],
    *,
    secrets: list[tuple[str, str]],
    retries: int,
    backoff: float,
    timeout: float,
    max_time: float,
    label: str,
) -> tuple[str, int]:
    """Send one request, retrying connection errors, 429 and 5xx with exponential backoff (or the
    server's Retry-After), every attempt and wait bounded by `max_time`: ("HTTP <status> after n
    attempts", attempts), else ActionFailed whose message has each of `secrets` (sent, shown) and every
    remembered secret scrubbed; nothing raised by the sending (whose text could quote a header or the
    URL) escapes unscrubbed.
    `label` (no secret in it) names the request in the retry log lines."""
    deadline = time.monotonic() + max_time
    delay, attempts = backoff, 0
    while True:
        attempts += 1
        try:
            status = _send(url, method, body, headers, min(timeout, deadline - time.monotonic()))
            return f"HTTP {status} after {attempts} attempt{'s' if attempts > 1 else ''}", attempts
        except _Retry as exc:
            problem, wait = scrub(str(exc), secrets), max(delay, exc.retry_after or 0)
        except _Fatal as exc:
            raise ActionFailed(scrub(str(exc), secrets) + f" (attempt {attempts}; not retried)", attempts) from None
        except Exception as exc:  # e.g. ValueError for a header http.client refuses: its text quotes the value
            problem = scrub(f"{type(exc).__name__}: {exc}", secrets)
            raise ActionFailed(f"{problem} (attempt {attempts}; not retried)", attempts) from None
        if attempts > retries:
            raise ActionFailed(f"{problem}; gave up after {attempts} attempts (retries: {retries})", attempts)
        if time.monotonic() + wait >= deadline:
            raise ActionFailed(
                f"{problem}; gave up after {attempts} attempts: max_time {max_time:g}s would be exceeded", attempts
            )
        log.warning("%s attempt %d: %s; retrying in %.2fs", label, attempts, problem, wait)
        time.sleep(wait)
        delay *= 2


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    pass


def _send(url: str, method: str, body: bytes, headers: dict, timeout: float) -> int:
    """One request; the status of a 2xx answer, else _Retry or _Fatal. Response bodies are not kept
    (a receiver could echo a header back)."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=max(timeout, 0.001)) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        status, reason, retry_after = exc.code, exc.reason, exc.headers.get("Retry-After") if exc.headers else None
        exc.close()
        text = f"HTTP {status} {reason}".strip()
        if status in _RETRY_STATUS:
            seconds = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
            raise _Retry(text, seconds) from None
        raise _Fatal(text) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            raise _Fatal(f"TLS: {exc.reason}") from None
        raise _Retry(f"connection failed: {exc.reason}") from None
    except (http.client.HTTPException, OSError) as exc:  # timeouts, resets, a malformed answer
        raise _Retry(f"connection failed: {type(exc).__name__}: {exc}".rstrip(": ")) from None


RUNNERS: dict[str, Callable[[Action, StoredDecision, Context, Clients], tuple[str, int]]] = {
    "codedeploy_stop": codedeploy_stop,
    "codepipeline_rollback": codepipeline_rollback,
    "webhook": webhook,
}
