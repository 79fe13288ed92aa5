"""AWS CodeCommit: "CodeCommit Repository State Change" EventBridge events (branch created or
updated) and commits read from the API (one archived payload per GetCommit answer), as `changes` rows.

- A branch's new head (`detail.commitId`) is a change pushed with itself as `pushed_head`, so a
  deployment linked to that commit holds it. The event carries no commit time: the time of the
  event stands in as `merged_at` (when the commit reached the branch); lead time counts from
  `committed_at` once the commit's own record (the API backfill) gives it.
- Tags, deleted branches and CodeCommit's other events (pull requests, comments) are archived only.
- An API commit (`collect codecommit`) gives `committed_at` from the committer's date, which
  CodeCommit writes as Git does: epoch seconds and the committer's UTC offset ("1484167798 -0800";
  the seconds are already UTC, the offset only says where the committer was).
- The service is `config.service_for_repository(repositoryName)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gatewatch.errors import PayloadError

from .base import Update, dispatch, field, timestamp

NAME = "codecommit"
STATE_CHANGE = "repository-state-change"
COMMIT = "commit"
PUSHES = frozenset({"referenceCreated", "referenceUpdated"})
_GIT_DATE = re.compile(r"(-?\d+) [+-]\d{4}")


def detect(payload: Any, hint: str | None = None) -> str | None:
    """EventBridge events from aws.codecommit, or a commit archived by `collect codecommit`."""
    if not isinstance(payload, Mapping):
        return None
    if payload.get("source") == "aws.codecommit" and "detail-type" in payload:
        return STATE_CHANGE if payload["detail-type"] == "CodeCommit Repository State Change" else "other"
    if "repositoryName" in payload and "commitId" in payload and isinstance(payload.get("commit"), Mapping):
        return COMMIT
    return None


def event_id(kind: str, payload: Any) -> str | None:
    """EventBridge's event id (a redelivery repeats it); an API commit dedupes on content."""
    return str(payload["id"]) if kind != COMMIT and payload.get("id") else None


def git_date(payload: Mapping, path: str) -> datetime:
    """A CodeCommit date ("<epoch seconds> <+-HHMM>") as an aware UTC datetime."""
    value = field(payload, path)
    match = _GIT_DATE.fullmatch(value.strip())
    if match is None:
        raise PayloadError(path, "epoch seconds and a UTC offset such as '1484167798 -0800'", value)
    return datetime.fromtimestamp(int(match.group(1)), UTC)


def _state_change(payload: Mapping, config: Any) -> list[Update]:
    if field(payload, "detail.event") not in PUSHES or field(payload, "detail.referenceType") != "branch":
        return []
    repository = field(payload, "detail.repositoryName")
    head = field(payload, "detail.commitId")
    values = {
        "service": config.service_for_repository(repository),
        "repository": repository,
        "merged_at": timestamp(payload, "time"),
        "pushed_head": head,
    }
    return [Update("changes", head, values)]


def _commit(payload: Mapping, config: Any) -> list[Update]:
    repository = field(payload, "repositoryName")
    commit = field(payload, "commitId")
    message = (field(payload, "commit.message", required=False) or "").strip()
    values = {
        "service": config.service_for_repository(repository),
        "repository": repository,
        "committed_at": git_date(payload, "commit.committer.date"),
        "author": field(payload, "commit.author.name", required=False),
        "title": message.splitlines()[0] if message else None,
        "pushed_head": commit,
    }
    return [Update("changes", commit, values)]


HANDLERS = {STATE_CHANGE: _state_change, COMMIT: _commit}


def normalise(kind: str, payload: Any, config: Any) -> list[Update]:
    """The change a branch push or an API commit gives; other events give none."""
    return dispatch(HANDLERS, kind, payload, config)
