"""CodePipeline history through boto3: ListPipelineExecutions and ListActionExecutions, paginated,
plus GetPipelineExecution for an execution whose summary lacks its trigger or source revisions,
archived as one payload per execution (kind `execution-history`) and projected like EventBridge
events of the same execution. Executions are stored in batches as they are read, so an interrupted
backfill keeps what it read; running it again stores only what changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from itertools import islice
from typing import Any

from sqlalchemy import Engine

from gatewatch.errors import ConfigError, SourceUnavailable

from ..config import Config
from ..ingest import Envelope, IngestSummary, ingest
from ..timeutil import as_utc

BATCH = 50  # executions per transaction: a few seconds of API calls


def make_client(region: str | None = None, endpoint_url: str | None = None, service: str = "codepipeline"):
    """A boto3 client of `service` (credentials from the usual AWS chain, read now: a session of its own,
    not boto3's process-wide one); setup mistakes as ConfigError."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url)
    except ValueError as exc:  # botocore's "Invalid endpoint"
        raise ConfigError(f"--endpoint-url: {exc}; give a URL such as http://127.0.0.1:5000") from None
    except BotoCoreError as exc:
        raise _explain(exc, "", region) from None


def jsonable(value: Any) -> Any:
    """API responses with datetimes as ISO 8601 UTC strings (botocore gives local time), ready to archive."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def execution_histories(
    client, pipeline: str, since: datetime, progress: Callable[[int], None] | None = None
) -> Iterator[dict]:
    """Each execution of `pipeline` started at or after `since` (newest first), with its actions, and
    GetPipelineExecution's answer when the summary lacks the trigger or source revisions (older executions)."""
    executions = client.get_paginator("list_pipeline_executions")
    actions = client.get_paginator("list_action_executions")
    for page in executions.paginate(pipelineName=pipeline, PaginationConfig={"PageSize": 100}):
        for summary in page.get("pipelineExecutionSummaries", []):
            started = summary.get("startTime")
            if started is not None and as_utc(started) < since:
                return  # the API lists newest first: everything after this is older
            details: list[dict] = []
            for action_page in actions.paginate(
                pipelineName=pipeline,
                filter={"pipelineExecutionId": summary["pipelineExecutionId"]},
                PaginationConfig={"PageSize": 100},
            ):
                details.extend(action_page.get("actionExecutionDetails", []))
            payload = {"pipelineName": pipeline, "pipelineExecutionSummary": summary, "actionExecutionDetails": details}
            if not summary.get("trigger") or not summary.get("sourceRevisions"):
                payload["pipelineExecution"] = client.get_pipeline_execution(
                    pipelineName=pipeline, pipelineExecutionId=summary["pipelineExecutionId"]
                ).get("pipelineExecution", {})
            yield jsonable(payload)
            if progress:
                progress(1)


def message(exc: Exception) -> str:
    """The service's own message, short: a proxy or emulator may answer with a whole HTML page."""
    error = getattr(exc, "response", {}).get("Error", {})
    text = (error.get("Message") or "").strip()
    if not text or text.startswith("<"):
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"HTTP {status}" if status else str(exc)
    first = text.splitlines()[0]
    return first if len(first) <= 200 else first[:200] + "..."


def setup_error(exc: Exception) -> Exception | None:
    """The ConfigError for AWS credentials, profile or region missing, else None."""
    from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError, ProfileNotFound

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError(
            "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or run where an IAM role provides them)"
        )
    if isinstance(exc, ProfileNotFound):
        return ConfigError(f"{exc}: check AWS_PROFILE")
    if isinstance(exc, NoRegionError):
        return ConfigError("no AWS region: pass --region or set AWS_REGION")
    return None


def _explain(exc: Exception, pipeline: str, region: str | None) -> Exception:
    from botocore.exceptions import (
        ClientError,
        ParamValidationError,
    )

    setup = setup_error(exc)
    if setup is not None:
        return setup
    if isinstance(exc, ParamValidationError):
        return ConfigError(f"pipeline {pipeline!r} is not a valid pipeline name: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "PipelineNotFoundException":
            return ConfigError(
                f"pipeline {pipeline!r} not found in region {region or 'default'}; check --pipeline and --region"
            )
        if code in (
            "AccessDeniedException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ExpiredTokenException",
        ):
            return ConfigError(
                f"AWS refused the request ({code}): check the credentials (AWS_PROFILE); they need "
                "codepipeline:ListPipelineExecutions, codepipeline:ListActionExecutions and "
                "codepipeline:GetPipelineExecution"
            )
        hint = (
            "; set AWS_RETRY_MODE=adaptive and AWS_MAX_ATTEMPTS=10 to slow down and retry"
            if "Throttl" in code or code == "TooManyRequestsException"
            else ""
        )
        return SourceUnavailable(f"CodePipeline answered {code or 'an error'} for {pipeline!r}: {message(exc)}{hint}")
    return SourceUnavailable(f"CodePipeline could not be reached: {exc}")


def with_progress(error: Exception, stored: int, what: str) -> Exception:
    """`error`, saying what an interrupted backfill stored before it (kept: a rerun adds only the rest)."""
    if not stored:
        return error
    return type(error)(
        f"{error} ({stored} {what} stored before this; running the same command again stores only what is missing)"
    )


def batches(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while batch := list(islice(items, size)):
        yield batch


def _envelopes(pipeline: str, payloads: list[dict]) -> Iterator[Envelope]:
    for payload in payloads:
        execution = payload["pipelineExecutionSummary"].get("pipelineExecutionId")
        yield Envelope(
            json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            payload,
            "codepipeline",
            None,
            f"codepipeline:{pipeline}:{execution}",
        )


def backfill(
    engine: Engine,
    config: Config,
    client,
    pipelines: Iterable[str],
    since: datetime,
    progress: Callable[[int], None] | None = None,
    region: str | None = None,
    batch_size: int = BATCH,
) -> IngestSummary:
    """Archive and project the history of each pipeline since `since`, one transaction per batch."""
    from botocore.exceptions import BotoCoreError, ClientError

    summary = IngestSummary()
    for pipeline in pipelines:
        try:
            for batch in batches(execution_histories(client, pipeline, since, progress), batch_size):
                summary.add(ingest(engine, _envelopes(pipeline, batch), config, batch_size=batch_size))
        except (BotoCoreError, ClientError) as exc:
            raise with_progress(_explain(exc, pipeline, region), summary.stored, "execution(s)") from None
    return summary
