"""DORA report at scale: a store with 1M deployments, 5M changes and 50k incidents across 500
services, then the full `--by week` report for the last 90 days.

Prints: seconds from store to report (SQL loading + computation), peak memory of that process, and
the computation's time against DuckDB computing the same figures from the same frames in the same
run, after checking that the figures agree. Targets (issue 3): under 10 s end to end on SQLite,
under 2 GiB peak, computation within 3x of DuckDB.

    python benchmarks/dora.py [--deployments 1000000] [--store PATH] [--no-duckdb]

The store is built once with bulk inserts (not through the ingest path, which `benchmarks/ingest.py`
measures) and reused while its parameters match. DuckDB is a benchmark-only dependency
(`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from analysis import dora  # noqa: E402
from analysis.windows import window_between  # noqa: E402
from collector.db import bulk_insert, create_store_engine, upgrade, write_transaction  # noqa: E402
from collector.loaders import Scope, load_dora_frames  # noqa: E402
from collector.models import changes, deployment_changes, deployments, incidents  # noqa: E402

END = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_DAYS = 730
WINDOW = (date(2024, 10, 3), date(2025, 1, 1))  # the last 90 days of the data
CHUNK = 100_000


def _times(seconds: np.ndarray) -> list[datetime]:
    base = END - timedelta(days=SPAN_DAYS)
    return [base + timedelta(seconds=float(s)) for s in seconds]


def build(
    url: str, n_deployments: int, services: int = 500, changes_per: int = 5, n_incidents: int = 50_000, seed: int = 11
) -> None:
    """Fill an empty store with a synthetic organisation (vectorised; no ingest path)."""
    rng = np.random.default_rng(seed)
    engine = create_store_engine(url)
    upgrade(engine)
    span = SPAN_DAYS * 86400
    # Unique finish times (no ties), sorted, spread over the span.
    finished = np.sort(rng.choice(span * 10, size=n_deployments, replace=False) / 10.0)
    service = rng.integers(0, services, size=n_deployments)
    status = np.where(rng.random(n_deployments) < 0.06, "rolled_back", "success")
    status[rng.random(n_deployments) < 0.04] = "failure"
    hotfix = rng.random(n_deployments) < 0.03
    is_rb = rng.random(n_deployments) < 0.025
    # A rollback names its service's previous deployment.
    order = np.lexsort((finished, service))
    prev = np.full(n_deployments, -1)
    same = service[order][1:] == service[order][:-1]
    prev[order[1:][same]] = order[:-1][same]
    is_rb &= prev >= 0
    started = time.perf_counter()
    for lo in range(0, n_deployments, CHUNK):
        hi = min(lo + CHUNK, n_deployments)
        fin = _times(finished[lo:hi])
        rows = [
            {
                "id": f"d{i}",
                "source": "bench",
                "service": f"svc-{service[i]:03d}",
                "team": f"team-{service[i] % 25:02d}",
                "environment": "production",
                "production": True,
                "status": status[i],
                "status_at": fin[k],
                "started_at": fin[k] - timedelta(minutes=10),
                "finished_at": fin[k],
                "version": None,
                "revision": None,
                "pipeline_run_id": None,
                "rollback_of": f"d{prev[i]}" if is_rb[i] else None,
                "is_rollback": bool(is_rb[i]),
                "hotfix": bool(hotfix[i]),
                "url": None,
            }
            for k, i in enumerate(range(lo, hi))
        ]
        lead = rng.lognormal(mean=np.log(20 * 3600), sigma=1.2, size=(hi - lo) * changes_per)
        commit_rows, link_rows = [], []
        for k, i in enumerate(range(lo, hi)):
            for j in range(changes_per):
                sha = f"c{i}x{j}"
                committed = fin[k] - timedelta(seconds=float(lead[k * changes_per + j]))
                commit_rows.append(
                    {
                        "id": sha,
                        "service": rows[k]["service"],
                        "repository": None,
                        "committed_at": committed,
                        "merged_at": None,
                        "pr": None,
                        "author": None,
                        "title": None,
                        "pushed_head": None,
                    }
                )
                link_rows.append({"id": f"d{i}|{sha}", "deployment_id": f"d{i}", "change_id": sha})
        with write_transaction(engine) as conn:
            bulk_insert(conn, deployments, rows)
            bulk_insert(conn, changes, commit_rows)
            bulk_insert(conn, deployment_changes, link_rows)
        print(f"  built {hi:,} deployments ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    opened = rng.random(n_incidents) * span
    inc_service = rng.integers(0, services, size=n_incidents)
    explicit = rng.random(n_incidents) < 0.3
    target = rng.integers(0, n_deployments, size=n_incidents)
    duration = rng.lognormal(mean=np.log(2 * 3600), sigma=1.0, size=n_incidents)
    open_now = rng.random(n_incidents) < 0.02
    rows = []
    for i, at in enumerate(_times(opened)):
        svc = inc_service[i]
        dep_id = None
        if explicit[i]:
            dep_id = f"d{target[i]}"
            svc = service[target[i]]
            at = _times(finished[target[i] : target[i] + 1])[0] + timedelta(minutes=30)
        resolved = None if open_now[i] else at + timedelta(seconds=float(duration[i]))
        rows.append(
            {
                "id": f"i{i}",
                "source": "bench",
                "service": f"svc-{svc:03d}",
                "title": None,
                "severity": None,
                "status": "triggered" if resolved is None else "resolved",
                "status_at": resolved or at,
                "opened_at": at,
                "acknowledged_at": None,
                "resolved_at": resolved,
                "deployment_id": dep_id,
                "url": None,
            }
        )
    with write_transaction(engine) as conn:
        bulk_insert(conn, incidents, rows)
    if engine.dialect.name == "postgresql":  # planner statistics, as autovacuum would gather them
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    engine.dispose()


def measure(url: str, with_duckdb: bool) -> dict:
    """Store to report, then (separately timed) DuckDB on the same frames."""
    window = window_between(*WINDOW)
    engine = create_store_engine(url)
    t0 = time.perf_counter()
    frames = load_dora_frames(engine, window.start, window.end, Scope())
    t1 = time.perf_counter()
    result = dora.report(frames, window, by="week")
    t2 = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "load_s": round(t1 - t0, 3),
        "compute_s": round(t2 - t1, 3),
        "end_to_end_s": round(t2 - t0, 3),
        "peak_mib": round(peak_mib),
        "deployments_in_window": result["deployment_frequency"]["deployments"],
        "frame_rows": {
            "deployments": len(frames.deployments),
            "changes": len(frames.changes),
            "incidents": len(frames.incidents),
        },
    }
    if with_duckdb:
        from duckdb_reference import compare, duckdb_report

        best_ours = min(_timed(lambda: dora.report(frames, window, by="week")) for _ in range(3))
        best_duck, reference = min(
            (_timed_value(lambda: duckdb_report(frames, window)) for _ in range(3)), key=lambda pair: pair[0]
        )
        mismatches = compare(result, reference)
        out.update(
            compute_best_s=round(best_ours, 3),
            duckdb_s=round(best_duck, 3),
            ratio_to_duckdb=round(best_ours / best_duck, 2),
            figures_agree=not mismatches,
            mismatches=mismatches[:10],
        )
    engine.dispose()
    return out


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _timed_value(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1_000_000)
    parser.add_argument("--store", default=str(ROOT / "benchmarks" / "out" / "dora-{n}.db"))
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, not args.no_duckdb)))
        return
    path = Path(args.store.format(n=args.deployments))
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = path.with_suffix(".ok")
    if not marker.exists():
        path.unlink(missing_ok=True)
        print(
            f"building {path} ({args.deployments:,} deployments, {args.deployments * 5:,} changes, "
            "50,000 incidents, 500 services) ...",
            file=sys.stderr,
        )
        build(f"sqlite:///{path}", args.deployments)
        marker.write_text("ok")
    targets = [("sqlite", f"sqlite:///{path}")]
    for label, url in targets:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
        proc = subprocess.run(
            [sys.executable, __file__, "--measure", url] + (["--no-duckdb"] if args.no_duckdb else []),
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode:
            raise SystemExit(proc.stderr)
        res = json.loads(proc.stdout)
        print(
            f"{label}: store -> `--by week` report in {res['end_to_end_s']:.2f} s "
            f"(SQL load {res['load_s']:.2f} s, compute {res['compute_s']:.2f} s), peak {res['peak_mib']:,} MiB, "
            f"{res['deployments_in_window']:,} deployments in the 90-day window"
        )
        if "duckdb_s" in res:
            print(
                f"{label}: computation {res['compute_best_s']:.3f} s vs DuckDB {res['duckdb_s']:.3f} s on the same "
                f"frames: ratio {res['ratio_to_duckdb']:.2f}; figures agree: {res['figures_agree']}"
            )
            for m in res["mismatches"]:
                print(f"   mismatch {m}")
        print(json.dumps({label: res}))


if __name__ == "__main__":
    main()
