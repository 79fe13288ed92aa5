"""The one ingest path every event takes (files, stdin, webhooks, API backfills, the demo):
archive the raw payload and merge its projection in the same transaction, quarantining what
cannot be parsed with the reason, never dropping it."""

from __future__ import annotations

import csv
import gc
import hashlib
import itertools
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from gatewatch.errors import ConfigError, PayloadError

from . import listings, projections, sources
from .config import Config
from .db import DEFAULT_KEY_CHUNK, KEY_CHUNK, bulk_insert, key_filter, translates_store_errors, write_transaction
from .models import PROJECTION_TABLES, raw_events
from .sources import senders
from .textfiles import file_problem, read_problem, text_stream
from .timeutil import utcnow

log = logging.getLogger(__name__)
OK, QUARANTINED = "ok", "quarantined"
UNKNOWN_KINDS = ("unknown", "unparsed")
SOURCE_CHOICES = ("auto", *sources.SOURCES)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A payload as received: its text, and what the transport says about it."""

    text: str
    parsed: Any = None  # the payload already decoded, when the reader had to (JSON lists, CSV)
    source: str | None = None  # forced source; None detects
    hint: str | None = None  # e.g. the X-GitHub-Event header
    origin: str = ""  # where it came from, for messages (file:line)


@dataclass(slots=True)
class Processed:
    """An envelope after parsing and normalising, ready to be archived."""

    origin: str
    source: str
    kind: str
    dedupe_key: str
    text: str
    status: str
    error: str | None
    updates: list


@dataclass(frozen=True)
class Quarantine:
    """A payload archived as quarantined, and why."""

    origin: str
    source: str
    kind: str
    error: str


@dataclass
class IngestSummary:
    """What an ingest did: stored (new payloads archived and projected), duplicates, and quarantined
    (archived too, with reasons); a payload is counted in exactly one of the three."""

    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    quarantined: list[Quarantine] = field(default_factory=list)
    by_source: Counter = field(default_factory=Counter)
    duplicates_by_source: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)  # e.g. a pipeline none of whose stages is production

    @property
    def exit_code(self) -> int:
        """0 when nothing was quarantined, 1 when something was (it is still archived)."""
        return 1 if self.quarantined else 0

    def add(self, other: IngestSummary) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.ignored += other.ignored
        self.quarantined.extend(other.quarantined)
        self.by_source.update(other.by_source)
        self.duplicates_by_source.update(other.duplicates_by_source)
        self.warnings.extend(w for w in other.warnings if w not in self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "quarantined": len(self.quarantined),
            "by_source": dict(sorted(self.by_source.items())),
            "quarantine": [q.__dict__ for q in self.quarantined],
            "warnings": self.warnings,
        }


def canonical_hash(payload: Any) -> str:
    """A content hash that ignores key order and whitespace."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _describe(exc: Exception, source: str) -> str:
    if isinstance(exc, PayloadError):
        return str(exc)
    log.exception("normaliser %s failed", source)
    return f"internal error in the {source} normaliser ({exc.__class__.__name__}: {exc}); please report it"


def normalise_payload(
    payload: Any, source: str | None, hint: str | None, config: Config, kind: str | None = None
) -> tuple[str, str, list, str | None]:
    """(source, kind, updates, error) for a parsed payload; `error` set means quarantine.

    `hint` is what the transport said (e.g. the X-GitHub-Event header) and helps detection; a known
    `kind` (a replay of an archived payload) skips detection."""
    if source is not None and kind is not None and kind not in UNKNOWN_KINDS:
        module = sources.SOURCES[source]
    elif source is not None:
        module = sources.SOURCES[source]
        kind = module.detect(payload, hint)
        if kind is None:
            return (
                source,
                "unknown",
                [],
                (
                    f"not recognised as a {source} payload; check --source "
                    "or let Gatewatch detect the source (--source auto)"
                ),
            )
    else:
        found = sources.detect(payload, hint)
        if found is None:
            sender = senders.identify(payload)
            return (
                "unknown",
                "unknown",
                [],
                (
                    f"unrecognised payload: looks like {sender}; Gatewatch has no adapter for it (send its "
                    "deployments as generic records, see the README's generic format)"
                    if sender
                    else "unrecognised payload: expected an AWS EventBridge event (CodePipeline, CodeDeploy, "
                    "CodeBuild, CodeCommit or a CloudWatch alarm), a GitHub, GitLab or PagerDuty webhook, or a "
                    "generic record with a 'type' field (deployment, change or incident)"
                ),
            )
        source, kind = found
        module = sources.SOURCES[source]
    try:
        updates = module.normalise(kind, payload, config)
        for upd in updates:
            projections.validate(upd)
    except Exception as exc:
        return source, kind, [], _describe(exc, source)
    return source, kind, updates, None


def process(envelope: Envelope, config: Config) -> Processed:
    """Parse and normalise one envelope (no I/O)."""
    payload = envelope.parsed
    if payload is None:
        try:
            payload = json.loads(envelope.text)
        except ValueError as exc:
            digest = hashlib.sha256(envelope.text.encode("utf-8", "surrogateescape")).hexdigest()
            return Processed(
                envelope.origin,
                envelope.source or "unknown",
                "unparsed",
                f"unparsed:{digest}",
                envelope.text,
                QUARANTINED,
                f"body: expected JSON ({exc})",
                [],
            )
    if not isinstance(payload, Mapping):
        digest = canonical_hash(payload)
        return Processed(
            envelope.origin,
            envelope.source or "unknown",
            "unparsed",
            f"unparsed:{digest}",
            envelope.text,
            QUARANTINED,
            f"body: expected a JSON object, got {type(payload).__name__}",
            [],
        )
    source, kind, updates, error = normalise_payload(payload, envelope.source, envelope.hint, config)
    natural = None
    if source in sources.SOURCES and kind not in UNKNOWN_KINDS:
        try:
            natural = sources.SOURCES[source].event_id(kind, payload)
        except Exception:
            natural = None
    dedupe = f"{source}:{natural}" if natural else f"{source}:{canonical_hash(payload)}"
    return Processed(
        envelope.origin, source, kind, dedupe[:255], envelope.text, QUARANTINED if error else OK, error, updates
    )


def _store_batch(engine: Engine, batch: list[Processed]) -> IngestSummary:
    summary = IngestSummary()
    received = utcnow()
    with write_transaction(engine) as conn:
        keys = list({p.dedupe_key for p in batch})
        existing: set[str] = set()
        known = select(raw_events.c.dedupe_key).where(key_filter(raw_events.c.dedupe_key, conn.dialect.name))
        chunk = KEY_CHUNK.get(conn.dialect.name, DEFAULT_KEY_CHUNK)
        for start in range(0, len(keys), chunk):
            existing.update(conn.execute(known, {"keys": keys[start : start + chunk]}).scalars())
        rows, updates = [], []
        for item in batch:
            if item.dedupe_key in existing:
                summary.duplicates += 1
                summary.duplicates_by_source[item.source] += 1
                continue
            existing.add(item.dedupe_key)
            rows.append(
                {
                    "source": item.source,
                    "kind": item.kind,
                    "dedupe_key": item.dedupe_key,
                    "received_at": received,
                    "payload": item.text,
                    "status": item.status,
                    "error": item.error,
                }
            )
            if item.status == QUARANTINED:
                summary.quarantined.append(Quarantine(item.origin, item.source, item.kind, item.error or ""))
            else:
                summary.stored += 1
                summary.by_source[item.source] += 1
                if not item.updates:
                    summary.ignored += 1
            updates.extend(item.updates)
        bulk_insert(conn, raw_events, rows)
        projections.apply(conn, updates)
    return summary


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # another writer stored the same dedupe key or row first
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, OperationalError) and code in ("40001", "40P01")


def store(engine: Engine, batch: list[Processed], attempts: int = 5) -> IngestSummary:
    """Archive a processed batch and merge its projections in one transaction (retried on races)."""
    for attempt in range(attempts):
        try:
            return _store_batch(engine, batch)
        except (IntegrityError, OperationalError) as exc:
            if attempt == attempts - 1 or not _is_retryable(exc):
                raise
            log.info("ingest batch raced another writer (%s); retrying", exc.__class__.__name__)
    raise AssertionError("unreachable")


def _batches(envelopes: Iterable[Envelope], size: int) -> Iterator[list[Envelope]]:
    batch: list[Envelope] = []
    for envelope in envelopes:
        batch.append(envelope)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Collect garbage less often while a batch allocates many short-lived objects (no cycles)."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@translates_store_errors
def ingest(
    engine: Engine,
    envelopes: Iterable[Envelope],
    config: Config,
    batch_size: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Archive and project every envelope; one transaction per batch."""
    summary = IngestSummary()
    pipelines: set[str] = set()
    with _bulk_allocation():
        for batch in _batches(envelopes, batch_size):
            processed = [process(envelope, config) for envelope in batch]
            pipelines.update(_codepipeline_pipelines(processed))
            summary.add(store(engine, processed))
            if progress:
                progress(len(batch))
    if pipelines:
        summary.warnings.extend(listings.production_stage_warnings(engine, config, pipelines))
    return summary


def _codepipeline_pipelines(batch: list[Processed]) -> Iterator[str]:
    for item in batch:
        if item.source == "codepipeline":
            for upd in item.updates:
                if upd.table == "pipeline_runs" and upd.values.get("pipeline"):
                    yield upd.values["pipeline"]


def ingest_payloads(
    engine: Engine,
    payloads: Iterable[Any],
    config: Config,
    source: str | None = None,
    hint: str | None = None,
    origin: str = "api",
) -> IngestSummary:
    """Ingest already-parsed payloads (API backfills, the demo); each is archived as compact JSON."""

    def envelopes() -> Iterator[Envelope]:
        for i, payload in enumerate(payloads, 1):
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
            yield Envelope(text, payload, source, hint, f"{origin}#{i}")

    return ingest(engine, envelopes(), config)


# --- reading files ---------------------------------------------------------------------------


def _csv_envelopes(lines: Iterable[str], name: str, source: str | None) -> Iterator[Envelope]:
    reader = csv.DictReader(lines)
    if not reader.fieldnames or "type" not in reader.fieldnames:
        raise ConfigError(
            f"{name}: a CSV file needs a header row with a 'type' column (see the README's generic format)"
        )
    for row in reader:
        record = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        if None in row:
            record["_extra_cells"] = row[None]
        text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        yield Envelope(text, record, source, None, f"{name}:{reader.line_num}")


def _parses(text: str) -> bool:
    """Whether `text` is one JSON object on its own."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _ndjson_envelopes(
    lines: Iterable[str], first_line_no: int, name: str, source: str | None, hint: str | None
) -> Iterator[Envelope]:
    for line_no, line in enumerate(lines, first_line_no):
        if line.strip():
            yield Envelope(line.rstrip("\r\n"), None, source, hint, f"{name}:{line_no}")


def read_stream(stream: TextIO, name: str, source: str | None = None, hint: str | None = None) -> Iterator[Envelope]:
    """Envelopes from a text stream: a JSON object, a JSON list, NDJSON, or CSV with a header."""
    first = stream.readline()
    skipped = 0
    while first and not first.strip():
        first = stream.readline()
        skipped += 1
    stripped = first.lstrip()
    if not stripped:
        return
    if stripped.startswith("["):
        text = first + stream.read()
        try:
            items = json.loads(text)
        except ValueError as exc:
            yield Envelope(text, None, source, hint, name)  # quarantined with the JSON error
            log.debug("%s: not a JSON list (%s)", name, exc)
            return
        for i, item in enumerate(items, 1):
            yield Envelope(
                json.dumps(item, separators=(",", ":"), ensure_ascii=False), item, source, hint, f"{name}[{i}]"
            )
        return
    if stripped.startswith("{"):
        if _parses(first):
            yield from _ndjson_envelopes(itertools.chain([first], stream), 1 + skipped, name, source, hint)
            return
        rest = stream.read()
        lines = (first + rest).splitlines(keepends=True)
        others = [line for line in lines[1:] if line.strip()]
        if _parses(first + rest) or sum(map(_parses, others)) * 2 < len(others) or not others:
            # A pretty-printed object (or one broken document): the whole stream is one payload.
            yield Envelope(first + rest, None, source, hint, name)
            return
        # NDJSON whose first line is broken: every line is its own payload.
        yield from _ndjson_envelopes(iter(lines), 1 + skipped, name, source, hint)
        return
    yield from _csv_envelopes(itertools.chain([first], stream), name, source)  # the first line put back


def read_files(paths: Iterable[str], source: str | None = None) -> Iterator[Envelope]:
    """Envelopes from files (`-` is stdin), in order; UTF-8, or UTF-16/32 with a byte-order mark."""
    for path in paths:
        try:
            if path == "-":
                yield from _stdin_envelopes(source)
                continue
            problem = file_problem(path)
            if problem:
                raise ConfigError(f"{path}: {problem}")
            with text_stream(Path(path).open("rb")) as stream:
                yield from read_stream(stream, path, source)
        except (UnicodeDecodeError, OSError) as exc:  # UnicodeDecodeError: UTF-16/32 (a byte-order mark), broken
            raise ConfigError(f"{path}: {read_problem(exc)}") from None


def _stdin_envelopes(source: str | None) -> Iterator[Envelope]:
    buffer = getattr(sys.stdin, "buffer", None)
    if not hasattr(buffer, "peek"):  # a stdin that is text only: no byte-order mark to look at
        yield from read_stream(sys.stdin, "<stdin>", source)
        return
    stream = text_stream(buffer)  # type: ignore[arg-type]
    try:
        yield from read_stream(stream, "<stdin>", source)
    finally:
        stream.detach()  # sys.stdin keeps its buffer


# --- replay ------------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    """What a replay did: events re-projected, quarantined ones that now parse, ones still failing."""

    events: int = 0
    recovered: int = 0
    newly_quarantined: int = 0
    still_quarantined: int = 0
    rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@translates_store_errors
def replay(
    engine: Engine, config: Config, batch_size: int = 5000, progress: Callable[[int], None] | None = None
) -> ReplaySummary:
    """Rebuild every projection from `raw_events`, retrying quarantined payloads; one transaction."""
    summary = ReplaySummary()
    with write_transaction(engine) as conn:
        for table in PROJECTION_TABLES:
            conn.execute(delete(table))
        last_id = 0
        while True:
            rows = conn.execute(
                select(
                    raw_events.c.id,
                    raw_events.c.source,
                    raw_events.c.kind,
                    raw_events.c.payload,
                    raw_events.c.status,
                    raw_events.c.error,
                )
                .where(raw_events.c.id > last_id)
                .order_by(raw_events.c.id)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            last_id = rows[-1].id
            updates: list = []
            changed: list[dict[str, Any]] = []
            for row in rows:
                found: list = []
                error: str | None = None
                try:
                    payload = json.loads(row.payload)
                except ValueError as exc:
                    new_status, error = QUARANTINED, f"body: expected JSON ({exc})"
                    source, kind = row.source, row.kind
                else:
                    if not isinstance(payload, Mapping):
                        source, kind = row.source, row.kind
                        error = f"body: expected a JSON object, got {type(payload).__name__}"
                    else:
                        known = row.source if row.source in sources.SOURCES else None
                        source, kind, found, error = normalise_payload(payload, known, None, config, kind=row.kind)
                    new_status = QUARANTINED if error else OK
                updates.extend(found)
                if row.status == QUARANTINED and new_status == OK:
                    summary.recovered += 1
                elif row.status == OK and new_status == QUARANTINED:
                    summary.newly_quarantined += 1
                elif new_status == QUARANTINED:
                    summary.still_quarantined += 1
                if new_status != row.status or error != row.error or kind != row.kind or source != row.source:
                    changed.append(
                        {"_id": row.id, "status": new_status, "error": error, "kind": kind, "source": source}
                    )
            if changed:
                conn.execute(update(raw_events).where(raw_events.c.id == bindparam("_id")), changed)
            projections.apply(conn, updates)
            summary.events += len(rows)
            if progress:
                progress(len(rows))
        for table in PROJECTION_TABLES:
            summary.rows[table.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
    return summary
