"""Ingest throughput: 100k generic and CodePipeline events from NDJSON into a fresh store.

Prints events/s for the collector and for a bare bulk insert of the same raw payloads into the
same kind of database (the floor the collector cannot beat), and their ratio.
Targets (issue 2): >= 20,000 events/s on SQLite and >= 0.3 of the bare insert.

    python benchmarks/ingest.py [--events 100000] [--postgres URL]   (PostgreSQL also via
    GATEWATCH_TEST_POSTGRES_URL)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from collector import ingest
from collector.config import config_from_mapping
from collector.db import bulk_insert, create_store_engine, upgrade, write_transaction
from collector.models import raw_events

START = datetime(2024, 1, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def codepipeline_execution(rng: random.Random, n: int) -> list[dict]:
    """One execution's EventBridge events: pipeline, Source/Build/Prod stages and their actions."""
    pipeline = f"svc-{n % 50}-pipeline"
    execution = str(uuid.UUID(int=rng.getrandbits(128)))
    t = START + timedelta(minutes=7 * n)
    sha = hashlib.sha1(f"{n}".encode()).hexdigest()
    events = []

    def event(detail_type: str, at: datetime, **detail) -> None:
        events.append(
            {
                "version": "0",
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "detail-type": detail_type,
                "source": "aws.codepipeline",
                "account": "123456789012",
                "time": iso(at),
                "region": "eu-west-1",
                "resources": [f"arn:aws:codepipeline:eu-west-1:123456789012:{pipeline}"],
                "detail": {
                    "pipeline": pipeline,
                    "version": 3,
                    "execution-id": execution,
                    "start-time": iso(t),
                    "pipeline-execution-attempt": 1,
                    "execution-trigger": {"trigger-type": "Webhook", "trigger-detail": sha},
                    **detail,
                },
            }
        )

    event("CodePipeline Pipeline Execution State Change", t, state="STARTED")
    clock = t
    for stage, action, category, provider in (
        ("Source", "Checkout", "Source", "CodeStarSourceConnection"),
        ("Build", "Build", "Build", "CodeBuild"),
        ("Prod", "Deploy", "Deploy", "CodeDeploy"),
    ):
        event("CodePipeline Stage Execution State Change", clock, stage=stage, state="STARTED")
        kind = {"owner": "AWS", "category": category, "provider": provider, "version": "1"}
        event(
            "CodePipeline Action Execution State Change", clock, stage=stage, action=action, state="STARTED", type=kind
        )
        clock += timedelta(seconds=rng.randint(20, 600))
        result = {"external-execution-id": sha if category == "Source" else str(n), "external-execution-summary": "ok"}
        event(
            "CodePipeline Action Execution State Change",
            clock,
            stage=stage,
            action=action,
            state="SUCCEEDED",
            type=kind,
            **{"execution-result": result},
        )
        event("CodePipeline Stage Execution State Change", clock, stage=stage, state="SUCCEEDED")
    event("CodePipeline Pipeline Execution State Change", clock, state="SUCCEEDED")
    return events


def generic_records(rng: random.Random, n: int) -> list[dict]:
    """A deployment with two changes, and now and then an incident."""
    service = f"svc-{n % 50}"
    finished = START + timedelta(minutes=11 * n)
    shas = [hashlib.sha1(f"g{n}-{i}".encode()).hexdigest() for i in range(2)]
    out = [
        {
            "type": "change",
            "id": sha,
            "service": service,
            "committed_at": iso(finished - timedelta(hours=rng.uniform(1, 72))),
        }
        for sha in shas
    ]
    out.append(
        {
            "type": "deployment",
            "id": f"dep-{n}",
            "service": service,
            "environment": "production",
            "status": rng.choice(["success"] * 9 + ["rolled_back"]),
            "started_at": iso(finished - timedelta(minutes=10)),
            "finished_at": iso(finished),
            "commits": shas,
            "team": f"team-{n % 7}",
        }
    )
    if n % 20 == 0:
        out.append(
            {
                "type": "incident",
                "id": f"inc-{n}",
                "service": service,
                "opened_at": iso(finished + timedelta(minutes=30)),
                "resolved_at": iso(finished + timedelta(minutes=95)),
            }
        )
    return out


def write_events(path: Path, total: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    written, n = 0, 0
    with path.open("w") as out:
        while written < total:
            batch = codepipeline_execution(rng, n) + generic_records(rng, n)
            for payload in batch[: total - written]:
                out.write(json.dumps(payload, separators=(",", ":")) + "\n")
                written += 1
            n += 1
    return written


def bare_insert(engine, path: Path, batch: int = 10_000) -> float:
    """The floor: the same raw lines inserted into raw_events in batches of the collector's size,
    with the collector's own bulk insert and transaction, nothing parsed."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    rows = []

    def flush() -> None:
        with write_transaction(engine) as conn:
            bulk_insert(conn, raw_events, rows)
        rows.clear()

    with path.open() as lines:
        for i, line in enumerate(lines):
            rows.append(
                {
                    "source": "bench",
                    "kind": "raw",
                    "dedupe_key": f"bare:{i}",
                    "received_at": now,
                    "payload": line.rstrip("\n"),
                    "status": "ok",
                }
            )
            if len(rows) >= batch:
                flush()
    if rows:
        flush()
    return time.perf_counter() - started


def collector_ingest(engine, path: Path) -> tuple[float, ingest.IngestSummary]:
    config = config_from_mapping({}, environ={})
    started = time.perf_counter()
    summary = ingest.ingest(engine, ingest.read_files([str(path)]), config)
    return time.perf_counter() - started, summary


def fresh_postgres(url: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_store_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def drop_postgres(url: str, schema: str) -> None:
    admin = create_store_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def measure(label: str, make_url, path: Path, events: int) -> dict:
    url_a, cleanup_a = make_url()
    url_b, cleanup_b = make_url()
    try:
        floor_engine = create_store_engine(url_a)
        upgrade(floor_engine)
        floor = bare_insert(floor_engine, path)
        floor_engine.dispose()
        engine = create_store_engine(url_b)
        upgrade(engine)
        seconds, summary = collector_ingest(engine, path)
        engine.dispose()
    finally:
        cleanup_a()
        cleanup_b()
    if summary.stored != events or summary.quarantined:
        first = summary.quarantined[0].error if summary.quarantined else ""
        raise SystemExit(
            f"{label}: stored {summary.stored} of {events}, quarantined {len(summary.quarantined)} (first: {first})"
        )
    result = {
        "store": label,
        "events": events,
        "collector_events_per_s": round(events / seconds),
        "bare_insert_events_per_s": round(events / floor),
        "ratio": round(floor / seconds, 3),
        "collector_s": round(seconds, 2),
        "bare_s": round(floor, 2),
    }
    print(
        f"{label:10s} collector {result['collector_events_per_s']:>8,} events/s ({seconds:.1f} s)   "
        f"bare insert {result['bare_insert_events_per_s']:>8,} events/s ({floor:.1f} s)   "
        f"ratio {result['ratio']:.2f}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get("GATEWATCH_TEST_POSTGRES_URL"))
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.ndjson"
        events = write_events(path, args.events)
        print(
            f"{events:,} events ({path.stat().st_size / 1e6:.0f} MB NDJSON: CodePipeline EventBridge "
            "events and generic deployment/change/incident records)"
        )
        counter = iter(range(1000))

        def sqlite_url():
            file = Path(tmp) / f"store{next(counter)}.db"
            return f"sqlite:///{file}", lambda: None

        results = [measure("sqlite", sqlite_url, path, events)]
        if args.postgres:

            def pg_url():
                url, schema = fresh_postgres(args.postgres)
                return url, lambda: drop_postgres(args.postgres, schema)

            results.append(measure("postgresql", pg_url, path, events))
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
