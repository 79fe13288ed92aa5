"""Running the demo: its payloads counted by kind, ingested through the one ingest path, and the result."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from analysis.windows import FIRST_DAY, LAST_DAY
from collector.config import Config
from collector.ingest import Envelope, IngestSummary, ingest
from collector.listings import count_raw_events
from collector.sources import SOURCES
from gatewatch.errors import ConfigError

from .config import config_for_run
from .extras import DemoExtras, build
from .history import end_of, generate
from .organisation import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_SERVICES,
    DEMO_FILES,
    Service,
    demo_config_mapping,
    organisation,
)

AWS_SOURCES = frozenset({"codebuild", "codedeploy", "cloudwatch", "codecommit"})  # kinds as their adapters name them


def payload_kind(source: str, hint: str | None, payload: dict) -> str:
    """A short label of what a payload is, for counting (not the normaliser's kind)."""
    if source == "github":
        return hint or "unknown"
    if source == "codepipeline":
        return payload["detail-type"].split()[1].lower()
    if source == "pagerduty":
        return payload["event"]["event_type"]
    if source in AWS_SOURCES:
        return SOURCES[source].detect(payload, hint) or "unknown"
    return payload.get("type", "unknown")


@dataclass
class DemoResult:
    """What the demo built and what the ingest made of it."""

    services: list[Service]
    start: datetime
    end: datetime
    seed: int
    payloads: Counter
    summary: IngestSummary
    generate_seconds: float
    ingest_seconds: float

    @property
    def teams(self) -> dict[str, list[str]]:
        """Each team's services, in the organisation's order."""
        out: dict[str, list[str]] = {}
        for s in self.services:
            out.setdefault(s.team, []).append(s.name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The result as `gatewatch demo --json` prints it (without the command's own fields)."""
        by_source: dict[str, dict[str, int]] = {}
        for (source, kind), n in sorted(self.payloads.items()):
            by_source.setdefault(source, {})[kind] = n
        return {
            "services": [
                {
                    "name": s.name,
                    "team": s.team,
                    "platform": s.platform,
                    "repository": s.repository,
                    "pipeline": s.pipeline,
                    "pagerduty_service": s.pagerduty_id,
                }
                for s in self.services
            ],
            "teams": self.teams,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "payloads": sum(self.payloads.values()),
            "payloads_by_source": by_source,
            "ingest": self.summary.to_dict(),
            "generate_seconds": round(self.generate_seconds, 2),
            "ingest_seconds": round(self.ingest_seconds, 2),
        }


def envelopes(payloads: list[tuple[str, str | None, dict]]) -> Iterator[Envelope]:
    """Each payload as the ingest path receives it: compact JSON text, its source and hint."""
    for i, (source, hint, payload) in enumerate(payloads, 1):
        yield Envelope(
            json.dumps(payload, separators=(",", ":"), ensure_ascii=False), payload, source, hint, f"demo#{i}"
        )


def run_demo(
    engine: Engine,
    config: Config,
    services: int = DEFAULT_SERVICES,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    end: date | datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Generate the demo history and ingest it, in time order, through the one ingest path."""
    end_at = end_of(end)
    _check_end(end_at, days)
    began = time.perf_counter()
    payloads = generate(services, days, seed, end_at)
    generated = time.perf_counter()
    summary = ingest(engine, envelopes(payloads), config, progress=progress)
    done = time.perf_counter()
    counts = Counter((source, payload_kind(source, hint, p)) for source, hint, p in payloads)
    return DemoResult(
        organisation(services, seed),
        end_at - timedelta(days=days),
        end_at,
        seed,
        counts,
        summary,
        generated - began,
        done - generated,
    )


def _check_end(end: datetime, days: int) -> None:
    first = FIRST_DAY + timedelta(days=days)
    if not first <= end.date() <= LAST_DAY:
        raise ConfigError(f"--end {end.date()}: expected a date from {first} to {LAST_DAY} for {days} days of history")


@dataclass
class DemoRun:
    """Everything `gatewatch demo` did: the history ingested, the files and decisions built, the payloads
    the store held before, and the configuration used (the file written, or the warning of a merge)."""

    result: DemoResult
    extras: DemoExtras
    store_events_before: int
    mapping: dict[str, Any]
    config: Config
    config_written: str | None
    warning: str | None


def build_demo(
    engine: Engine,
    config: Config,
    services: int = DEFAULT_SERVICES,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    end: date | datetime | None = None,
    progress: Callable[[int], None] | None = None,
    folder: str | Path = DEMO_FILES,
) -> DemoRun:
    """The demo organisation in the store: its service and team maps merged into the configuration (or
    written to ./gatewatch.yaml when none is in use), its delivery history ingested, then its SLO files,
    canary runs and gate decisions under `folder`. Running it again stores only duplicates."""
    _check_end(end_of(end), days)
    mapping = demo_config_mapping(services, seed)
    before = count_raw_events(engine)  # reach the store before writing any file
    used, written, warning = config_for_run(config, mapping)
    result = run_demo(engine, used, services, days, seed, end, progress=progress)
    extras = build(engine, used, result.services, result.start, result.end, seed, Path(folder).resolve())
    return DemoRun(result, extras, before, mapping, used, written, warning)
