"""The one ingest path every event takes (files, stdin, webhooks, API backfills, the demo):
archive the raw payload and merge its projection in the same transaction, quarantining what
cannot be parsed with the reason, never dropping it."""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import itertools
import json
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, SQLAlchemyError, StatementError

from gatewatch.errors import ConfigError, PayloadError

from . import column_limits, listings, payload_text, projections, sources
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
    error: str | None = None  # why it is quarantined, when the reader already knows (e.g. neither JSON nor CSV)


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


def _storable(text: str) -> str:
    """`text` with NUL characters written as the JSON escape \\u0000: PostgreSQL's text columns refuse them."""
    return text.replace("\x00", "\\u0000") if "\x00" in text else text


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
        non_finite = _non_finite_path(payload)
        if non_finite is not None:
            raise PayloadError(non_finite[0], "a finite number (NaN and Infinity are not accepted)", non_finite[1])
        updates = module.normalise(kind, payload, config)
        for upd in updates:
            projections.validate(upd)
            _check_fits(upd, payload)
    except Exception as exc:
        return source, kind, [], _describe(exc, source)
    return source, kind, updates, None


def _leaves(payload: Any) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every scalar in `payload`, without recursion (a payload may nest deeply)."""
    stack: list[tuple[Any, str]] = [(payload, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, (Mapping, list)):
            items = node.items() if isinstance(node, Mapping) else enumerate(node)
            stack.extend((value, f"{path}.{key}" if path else str(key)) for key, value in reversed(list(items)))
        else:
            yield path or "body", node


def _non_finite_path(payload: Any) -> tuple[str, float] | None:
    """The first (path, value) in `payload` that is NaN or ±Infinity (Python's json reads them), if any."""
    stack = [payload]
    while stack:  # the common case, none, found fast: no paths built
        node = stack.pop()
        for value in node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else ():
            kind = type(value)
            if kind is dict or kind is list:
                stack.append(value)
            elif kind is float and not math.isfinite(value):
                break
        else:
            continue
        break
    else:
        return None
    for path, value in _leaves(payload):
        if type(value) is float and not math.isfinite(value):
            return path, value
    return None


def _path_of(payload: Any, value: Any) -> str | None:
    """Where in `payload` a projected value came from: the leaf equal to it, else (for a key or text built
    from several fields) the longest string leaf inside it that shares its fault (a NUL, or mere length)."""
    best: tuple[int, str] | None = None
    for path, leaf in _leaves(payload):
        if leaf == value and type(leaf) is type(value):
            return path
        if isinstance(value, str) and isinstance(leaf, str) and leaf and leaf in value:
            if "\x00" in value and "\x00" not in leaf:
                continue
            if best is None or len(leaf) > best[0]:
                best = (len(leaf), path)
    return best[1] if best else None


def _check_fits(upd: Any, payload: Any) -> None:
    """Refuse an update with a value its column cannot hold (on either store), naming the payload's field."""
    table = projections.TABLES[upd.table]
    for column, expected, value in column_limits.misfits(table, {"id": upd.key, **upd.values}):
        where = f"{upd.table}.{column}"
        path = _path_of(payload, value)
        raise PayloadError(path or where, f"{expected} (stored in {where})", value)


def process(envelope: Envelope, config: Config) -> Processed:
    """Parse and normalise one envelope (no I/O)."""
    payload, problem = payload_text.parse(envelope.text, envelope.parsed)
    if problem or envelope.error:
        digest = hashlib.sha256(payload_text.payload_bytes(envelope.text)).hexdigest()
        return Processed(
            envelope.origin,
            envelope.source or "unknown",
            "unparsed",
            f"unparsed:{digest}",
            payload_text.to_archive(envelope.text),
            QUARANTINED,
            envelope.error or problem,
            [],
        )
    source, kind, updates, error = normalise_payload(payload, envelope.source, envelope.hint, config)
    natural = None
    if source in sources.SOURCES and kind not in UNKNOWN_KINDS:
        try:
            natural = sources.SOURCES[source].event_id(kind, payload)
        except Exception:
            natural = None
    dedupe = f"{source}:{_storable(natural)}" if natural else f"{source}:{canonical_hash(payload)}"
    status = QUARANTINED if error else OK
    archived = payload_text.to_archive(envelope.text)
    return Processed(
        envelope.origin, source, kind, dedupe[:255], archived, status, _storable(error) if error else None, updates
    )


def _raw_row(item: Processed, received: Any) -> dict[str, Any]:
    return {
        "source": item.source,
        "kind": item.kind,
        "dedupe_key": item.dedupe_key,
        "received_at": received,
        "payload": _storable(item.text),  # only an unparseable body can hold a raw NUL
        "status": item.status,
        "error": item.error,
    }


def _count(summary: IngestSummary, item: Processed) -> None:
    if item.status == QUARANTINED:
        summary.quarantined.append(Quarantine(item.origin, item.source, item.kind, item.error or ""))
    else:
        summary.stored += 1
        summary.by_source[item.source] += 1
        if not item.updates:
            summary.ignored += 1


def _new_items(conn: Connection, batch: list[Processed], summary: IngestSummary) -> Iterator[Processed]:
    """The payloads of `batch` not archived yet (by dedupe key), the others counted as duplicates."""
    keys = list({p.dedupe_key for p in batch})
    existing: set[str] = set()
    known = select(raw_events.c.dedupe_key).where(key_filter(raw_events.c.dedupe_key, conn.dialect.name))
    chunk = KEY_CHUNK.get(conn.dialect.name, DEFAULT_KEY_CHUNK)
    for start in range(0, len(keys), chunk):
        existing.update(conn.execute(known, {"keys": keys[start : start + chunk]}).scalars())
    for item in batch:
        if item.dedupe_key in existing:
            summary.duplicates += 1
            summary.duplicates_by_source[item.source] += 1
            continue
        existing.add(item.dedupe_key)
        yield item


def _store_batch(engine: Engine, batch: list[Processed]) -> IngestSummary:
    summary = IngestSummary()
    received = utcnow()
    with write_transaction(engine) as conn:
        rows, updates = [], []
        for item in _new_items(conn, batch, summary):
            rows.append(_raw_row(item, received))
            _count(summary, item)
            updates.extend(item.updates)
        bulk_insert(conn, raw_events, rows)
        projections.apply(conn, updates)
    return summary


def _store_each(engine: Engine, batch: list[Processed]) -> IngestSummary:
    """Archive a batch payload by payload, each in a savepoint: one the store refuses is archived as
    quarantined with the store's reason, and the others are stored as usual."""
    summary = IngestSummary()
    received = utcnow()
    with write_transaction(engine) as conn:
        for item in list(_new_items(conn, batch, summary)):
            try:
                with conn.begin_nested():
                    bulk_insert(conn, raw_events, [_raw_row(item, received)])
                    projections.apply(conn, item.updates)
            except Exception as exc:
                if _is_retryable(exc) or not _is_payload_fault(exc):
                    raise
                error = f"the store refused this payload ({_driver_message(exc)})"
                log.warning("%s: %s", item.origin, error)
                item = replace(item, status=QUARANTINED, error=error, updates=[])
                with conn.begin_nested():
                    bulk_insert(conn, raw_events, [_raw_row(item, received)])
            _count(summary, item)
    return summary


def _driver_message(exc: BaseException) -> str:
    """Why the store refused a write, on one clean line: the driver's message, without SQL or parameters."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{cause.__class__.__name__}: {_storable(lines[0])[:300] if lines else 'no message'}"


def _is_retryable(exc: BaseException) -> bool:
    """A race with another writer (the same dedupe key or row stored first, a serialisation failure or
    deadlock): the whole write is tried again."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(exc, IntegrityError):
        return code == "23505" or "UNIQUE constraint failed" in str(exc.orig)
    return isinstance(exc, OperationalError) and code in ("40001", "40P01")


def _is_payload_fault(exc: BaseException) -> bool:
    """A failure one payload's values cause (out of range, too long, a NUL, a constraint), as opposed to
    the store being unreachable or locked: its batch is retried payload by payload."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    if isinstance(exc, DBAPIError):
        return False
    return isinstance(exc, (StatementError, OverflowError, ValueError))


def store(engine: Engine, batch: list[Processed], attempts: int = 5) -> IngestSummary:
    """Archive a processed batch and merge its projections in one transaction (retried on races); when a
    payload's values make the store refuse the batch, store it payload by payload instead."""
    write, races = _store_batch, 0
    while True:
        try:
            return write(engine, batch)
        except (SQLAlchemyError, OverflowError, ValueError) as exc:
            if _is_retryable(exc) and races < attempts - 1:
                races += 1
                log.info("ingest batch raced another writer (%s); retrying", exc.__class__.__name__)
                continue
            if write is _store_batch and _is_payload_fault(exc):
                log.warning("the store refused a batch (%s); storing it payload by payload", _driver_message(exc))
                write = _store_each
                continue
            raise


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
            yield Envelope(payload_text.compact_json(payload), payload, source, hint, f"{origin}#{i}")

    return ingest(engine, envelopes(), config)


# --- reading files ---------------------------------------------------------------------------


def _csv_envelopes(lines: Iterable[str], name: str, source: str | None) -> Iterator[Envelope]:
    reader = csv.DictReader(lines)
    try:
        if not reader.fieldnames or "type" not in reader.fieldnames:
            raise ConfigError(
                f"{name}: a CSV file needs a header row with a 'type' column (see the README's generic format)"
            )
        for row in reader:
            record = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
            if None in row:
                record["_extra_cells"] = row[None]
            yield Envelope(payload_text.compact_json(record), record, source, None, f"{name}:{reader.line_num}")
    except csv.Error as exc:
        raise ConfigError(f"{name}:{reader.line_num}: not readable as CSV ({exc})") from None


def _is_json(text: str) -> bool:
    try:
        payload_text.loads(text)
    except ValueError:
        return False
    return True


def _parses(text: str) -> bool:
    """Whether `text` is one JSON object on its own."""
    try:
        return isinstance(payload_text.loads(text), dict)
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
        if payload_text.encoding_problem(text):
            yield Envelope(text, None, source, hint, name)  # quarantined whole, its bytes kept exactly
            return
        try:
            items = payload_text.loads(text)
        except ValueError as exc:
            yield Envelope(text, None, source, hint, name)  # quarantined with the JSON error
            log.debug("%s: not a JSON list (%s)", name, exc)
            return
        for i, item in enumerate(items, 1):
            yield Envelope(payload_text.compact_json(item), item, source, hint, f"{name}[{i}]")
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


def read_body(text: str, origin: str, source: str | None = None, hint: str | None = None) -> list[Envelope]:
    """Envelopes of a received body (a JSON object or list, NDJSON or CSV). A body that holds no event,
    or is neither JSON nor CSV, is one envelope to quarantine with the reason: every body is archived."""
    try:
        envelopes = list(read_stream(io.StringIO(text), origin, source, hint))
    except ConfigError as exc:
        if payload_text.encoding_problem(text) or text.startswith("\ufeff") or _is_json(text):
            return [Envelope(text, None, source, hint, origin)]  # quarantined with the reason parsing gives
        reason = f"body: neither JSON nor CSV ({str(exc).removeprefix(origin + ': ')})"
        return [Envelope(text, None, source, hint, origin, reason)]
    if envelopes:
        return envelopes
    reason = "body: holds no event (an empty JSON list or CSV rows)"
    return [Envelope(text, None, source, hint, origin, None if text.isspace() or not text else reason)]


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
    if buffer is None:  # a stdin that is text only: no byte-order mark to look at
        yield from read_stream(sys.stdin, "<stdin>", source)
        return
    if not hasattr(buffer, "peek"):  # e.g. a BytesIO: peeking at the byte-order mark needs a buffered reader
        buffer = io.BufferedReader(buffer)
    stream = text_stream(buffer)
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
                payload, error = payload_text.parse(payload_text.from_archive(row.payload))
                if error:
                    source, kind = row.source, row.kind
                    if row.status == QUARANTINED and row.kind == "unparsed" and row.error:
                        error = row.error  # the reason given on receipt, which knew the transport
                else:
                    known = row.source if row.source in sources.SOURCES else None
                    source, kind, found, error = normalise_payload(payload, known, None, config, kind=row.kind)
                new_status = QUARANTINED if error else OK
                error = _storable(error) if error else None
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
