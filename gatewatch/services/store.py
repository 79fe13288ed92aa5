"""The store and getting events into it: open (and migrate) the store, ingest payload files and webhook
bodies through the one ingest path, replay the archive, list what is quarantined, backfill CodePipeline,
CodeCommit and CodeDeploy history, and the counts and filter choices the dashboard starts from."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from collector import ingest, listings
from collector.config import Config
from collector.db import (
    create_store_engine,
    current_revision,
    dispose_engines,
    get_engine,
    head_revision,
    in_memory,
    ping,
    upgrade,
)
from collector.history import codecommit as codecommit_history
from collector.history import codedeploy as codedeploy_history
from collector.history import codepipeline as codepipeline_history
from collector.redaction import mask_url

__all__ = [
    "backfill_codecommit",
    "backfill_codedeploy",
    "backfill_codepipeline",
    "check_store",
    "close_stores",
    "codecommit_client",
    "codedeploy_client",
    "codepipeline_client",
    "count_raw_events",
    "describe_store",
    "filter_options",
    "in_memory_store",
    "ingest_files",
    "ingest_text",
    "list_quarantined",
    "newest_event_times",
    "open_store",
    "production_stage_warnings",
    "quarantine_groups",
    "replay",
    "schema_revision",
    "store_counts",
    "store_revision",
    "upgrade_store",
]

Progress = Callable[[int], None]


def open_store(config: Config | str | None = None, *, migrate: bool = True) -> Engine:
    """The store's engine (shared per URL): the configuration's store, or a URL. It is migrated to the
    current schema on first use unless `migrate` is False (readers such as the dashboard)."""
    url = config.store_url if isinstance(config, Config) else config
    return get_engine(url, migrate=migrate)


def in_memory_store(url: str) -> bool:
    """Whether the URL names an in-memory SQLite store (no other process can see it)."""
    return in_memory(make_url(url))


def describe_store(url: str) -> str:
    """The store's URL with any password hidden, for messages and logs."""
    return mask_url(url)


def close_stores() -> None:
    """Close every store engine this process opened (before it execs or forks)."""
    dispose_engines()


def upgrade_store(url: str) -> tuple[str | None, str, str]:
    """Apply pending migrations: (revision before, revision after, the store's URL without its password)."""
    before, after = upgrade(create_store_engine(url))
    return before, after, mask_url(url)


def store_revision(url: str) -> tuple[str | None, str, str]:
    """(the store's schema revision or None, the newest this version ships, the URL without its password)."""
    return current_revision(create_store_engine(url)), head_revision(), mask_url(url)


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """(the store's schema revision, None before anything was written; the newest this version ships)."""
    return current_revision(engine), head_revision()


def check_store(engine: Engine) -> None:
    """StoreError unless the store answers."""
    ping(engine)


def store_counts(engine: Engine) -> dict[str, int]:
    """Rows per table the dashboard reads (to tell an empty store from an empty filter)."""
    return listings.load_store_counts(engine)


def filter_options(engine: Engine) -> dict[str, list[str]]:
    """The services, teams and environments in the store, sorted."""
    return listings.load_filter_options(engine)


def count_raw_events(engine: Engine) -> int:
    """How many payloads the archive holds."""
    return listings.count_raw_events(engine)


def newest_event_times(engine: Engine) -> dict[str, datetime]:
    """When the newest payload of each source was received (the server's `/metrics` reports its age)."""
    return listings.newest_event_times(engine)


def ingest_files(
    engine: Engine, config: Config, paths: Iterable[str], source: str | None = None, progress: Progress | None = None
) -> ingest.IngestSummary:
    """Archive and project every payload of the files (`-` is stdin): a JSON object or list, NDJSON or
    CSV; `source` forces the sender, else each payload's is detected. Nothing is dropped: what cannot
    be parsed is archived as quarantined with the reason."""
    return ingest.ingest(engine, ingest.read_files(paths, source), config, progress=progress)


def ingest_text(
    engine: Engine,
    config: Config,
    text: str,
    origin: str,
    source: str | None = None,
    hint: str | None = None,
    single: bool = False,
) -> ingest.IngestSummary:
    """Archive and project a received body: one payload of `source` (`single`, e.g. a GitHub webhook with
    its event header as `hint`), else a stream of JSON, NDJSON or CSV records."""
    if single:
        envelopes: Iterable[ingest.Envelope] = [ingest.Envelope(text, None, source, hint, origin)]
    else:
        envelopes = ingest.read_body(text, origin, source, hint)
    return ingest.ingest(engine, envelopes, config)


def replay(engine: Engine, config: Config, progress: Progress | None = None) -> ingest.ReplaySummary:
    """Rebuild every projection from the raw archive with this configuration, retrying quarantined
    payloads, in one transaction."""
    return ingest.replay(engine, config, progress=progress)


def list_quarantined(engine: Engine, limit: int = 50) -> list[dict[str, Any]]:
    """The newest quarantined payloads with their reasons."""
    return listings.list_quarantined(engine, limit)


def production_stage_warnings(engine: Engine, config: Config, pipelines: Iterable[str] | None = None) -> list[str]:
    """CodePipeline pipelines whose stages were seen and none is production by the configuration."""
    return listings.production_stage_warnings(engine, config, pipelines)


def quarantine_groups(engine: Engine, limit: int = 50, examples: int = 3) -> list[dict[str, Any]]:
    """Quarantined payloads grouped by identical reason, with a count and the first bytes of examples."""
    return listings.quarantine_groups(engine, limit, examples)


def codepipeline_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A CodePipeline client from the AWS credential chain (ConfigError for a missing region or bad endpoint)."""
    return codepipeline_history.make_client(region, endpoint_url)


def backfill_codepipeline(
    engine: Engine,
    config: Config,
    client: Any,
    pipelines: Iterable[str],
    since: datetime,
    progress: Progress | None = None,
    region: str | None = None,
) -> ingest.IngestSummary:
    """Archive and project each pipeline's executions since `since` (ListPipelineExecutions and
    ListActionExecutions), as the EventBridge events of the same executions would."""
    return codepipeline_history.backfill(engine, config, client, pipelines, since, progress, region)


def codecommit_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A CodeCommit client from the AWS credential chain (ConfigError for a missing region or bad endpoint)."""
    return codecommit_history.make_codecommit_client(region, endpoint_url)


def backfill_codecommit(
    engine: Engine,
    config: Config,
    client: Any,
    repository: str,
    since: datetime,
    branch: str | None = None,
    progress: Progress | None = None,
) -> ingest.IngestSummary:
    """Archive and project a branch's commits since `since` (GetBranch, GetCommit) as `changes` rows."""
    return codecommit_history.backfill(engine, config, client, repository, since, branch, progress)


def codedeploy_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A CodeDeploy client from the AWS credential chain (ConfigError for a missing region or bad endpoint)."""
    return codedeploy_history.make_codedeploy_client(region, endpoint_url)


def backfill_codedeploy(
    engine: Engine,
    config: Config,
    client: Any,
    application: str,
    since: datetime,
    groups: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> ingest.IngestSummary:
    """Archive and project an application's deployments created since `since` (ListDeploymentGroups,
    ListDeployments, BatchGetDeployments), as their EventBridge events would, plus rollbacks."""
    return codedeploy_history.backfill(engine, config, client, application, since, groups, progress)
