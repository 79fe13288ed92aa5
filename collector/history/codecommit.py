"""CodeCommit history through boto3: a branch's commits since a time (GetBranch, then GetCommit walking
parents), archived as one payload per commit (kind `commit` of the codecommit source) and projected as
`changes` rows with their commit times, so lead time works for teams whose code lives in CodeCommit.

The walk stops at commits committed before `since` (their parents are older still, unless history was
rewritten). Commits are stored in batches as they are read; running it again stores only what is new.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import Engine

from gatewatch.errors import ConfigError, PayloadError, SourceUnavailable

from ..config import Config
from ..ingest import Envelope, IngestSummary, ingest
from ..sources.codecommit import git_date
from .codepipeline import BATCH, batches, jsonable, make_client, message, setup_error, with_progress

__all__ = ["backfill", "branch_commits", "make_codecommit_client"]


def make_codecommit_client(region: str | None = None, endpoint_url: str | None = None):
    """A boto3 CodeCommit client from the usual AWS credential chain; setup mistakes as ConfigError."""
    return make_client(region, endpoint_url, service="codecommit")


def default_branch(client, repository: str) -> str | None:
    """The repository's default branch (None for an empty repository)."""
    return client.get_repository(repositoryName=repository)["repositoryMetadata"].get("defaultBranch")


def branch_commits(
    client, repository: str, branch: str, since: datetime, progress: Callable[[int], None] | None = None
) -> Iterator[dict]:
    """Each commit reachable from the head of `branch` and committed at or after `since`, from the head back."""
    head = client.get_branch(repositoryName=repository, branchName=branch)["branch"]["commitId"]
    pending, seen = deque([head]), {head}
    while pending:
        commit_id = pending.popleft()
        commit = client.get_commit(repositoryName=repository, commitId=commit_id)["commit"]
        payload = jsonable({"repositoryName": repository, "branch": branch, "commitId": commit_id, "commit": commit})
        try:
            recent: bool | None = git_date(payload, "commit.committer.date") >= since
        except PayloadError:
            recent = None  # archived (and quarantined, naming the field), but not walked past
        if recent is False:
            continue
        yield payload
        if progress:
            progress(1)
        for parent in (commit.get("parents") or []) if recent else []:
            if parent not in seen:
                seen.add(parent)
                pending.append(parent)


def _explain(exc: Exception, repository: str, branch: str | None) -> Exception:
    from botocore.exceptions import ClientError, ParamValidationError

    setup = setup_error(exc)
    if setup is not None:
        return setup
    if isinstance(exc, ParamValidationError):
        return ConfigError(f"repository {repository!r} or branch {branch!r} is not a valid name: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("RepositoryDoesNotExistException", "BranchDoesNotExistException"):
            return ConfigError(f"{message(exc)}: check --repository, --branch and --region")
        if code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
            return ConfigError(
                f"AWS refused the request ({code}): check the credentials (AWS_PROFILE); they need "
                "codecommit:GetRepository, codecommit:GetBranch and codecommit:GetCommit"
            )
        return SourceUnavailable(f"CodeCommit answered {code or 'an error'} for {repository!r}: {message(exc)}")
    return SourceUnavailable(f"CodeCommit could not be reached: {exc}")


def _envelopes(payloads: list[dict]) -> Iterator[Envelope]:
    for payload in payloads:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        yield Envelope(
            text, payload, "codecommit", None, f"codecommit:{payload['repositoryName']}:{payload['commitId']}"
        )


def backfill(
    engine: Engine,
    config: Config,
    client,
    repository: str,
    since: datetime,
    branch: str | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH,
) -> IngestSummary:
    """Archive and project the commits of `branch` (default: the repository's default branch) since `since`."""
    from botocore.exceptions import BotoCoreError, ClientError

    summary = IngestSummary()
    try:
        branch = branch or default_branch(client, repository)
        if branch is None:
            return summary  # an empty repository has no default branch and no commits
        for batch in batches(branch_commits(client, repository, branch, since, progress), batch_size):
            summary.add(ingest(engine, _envelopes(batch), config, batch_size=batch_size))
    except (BotoCoreError, ClientError) as exc:
        raise with_progress(_explain(exc, repository, branch), summary.stored, "commit(s)") from None
    return summary
