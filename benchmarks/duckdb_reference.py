"""An independent DuckDB implementation of the DORA figures over the same frames, used by
benchmarks/dora.py as a speed baseline and as a cross-check of the pandas implementation."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pandas as pd

from analysis.dora import DoraFrames
from analysis.windows import Window, buckets

ANNOTATE = """
CREATE OR REPLACE TEMP TABLE d AS
SELECT id, service, finished_at, status, rollback_of, coalesce(is_rollback, false) AS is_rollback,
       coalesce(hotfix, false) AS hotfix,
       lag(id) OVER w AS prev_id, lead(finished_at) OVER w AS next_at
FROM deps_df WINDOW w AS (PARTITION BY service ORDER BY finished_at, id);

CREATE OR REPLACE TEMP TABLE d2 AS
SELECT *, coalesce(rollback_of, CASE WHEN is_rollback THEN prev_id END) AS target FROM d;

CREATE OR REPLACE TEMP TABLE links AS
SELECT i.id AS inc, i.deployment_id AS dep, i.resolved_at
FROM inc_df i WHERE i.deployment_id IN (SELECT id FROM d2)
UNION ALL
SELECT inc, dep, resolved_at FROM (
    SELECT i.id AS inc, x.id AS dep, i.resolved_at,
           row_number() OVER (PARTITION BY i.id ORDER BY (x.finished_at <= i.opened_at) DESC,
               CASE WHEN x.finished_at <= i.opened_at THEN epoch(x.finished_at) ELSE -epoch(x.finished_at) END DESC,
               CASE WHEN x.finished_at <= i.opened_at THEN x.id END DESC,
               CASE WHEN x.finished_at > i.opened_at THEN x.id END ASC) AS rn
    FROM inc_df i JOIN cl_df cl ON cl.change_id = i.deployment_id JOIN d2 x ON x.id = cl.deployment_id
    WHERE i.deployment_id NOT IN (SELECT id FROM d2)) WHERE rn = 1
UNION ALL
SELECT i.id, x.id, i.resolved_at
FROM inc_df i ASOF JOIN d2 x ON i.service = x.service AND i.opened_at > x.finished_at
WHERE i.deployment_id IS NULL AND i.opened_at - x.finished_at <= to_seconds($link_seconds);

CREATE OR REPLACE TEMP TABLE ann AS
WITH rb AS (SELECT target, min(finished_at) AS rb_at FROM d2 WHERE target IS NOT NULL GROUP BY target),
     li AS (SELECT dep, max(resolved_at) AS res_at, bool_or(resolved_at IS NULL) AS any_open FROM links GROUP BY dep)
SELECT d2.id, d2.finished_at,
       (d2.status = 'rolled_back' OR rb.target IS NOT NULL OR li.dep IS NOT NULL) AS failed,
       (d2.target IS NOT NULL OR d2.is_rollback OR d2.hotfix) AS rework,
       CASE WHEN rb.rb_at IS NOT NULL THEN rb.rb_at
            WHEN li.dep IS NOT NULL THEN CASE WHEN li.any_open THEN NULL ELSE li.res_at END
            ELSE d2.next_at END AS rec_at
FROM d2 LEFT JOIN rb ON rb.target = d2.id LEFT JOIN li ON li.dep = d2.id;

CREATE OR REPLACE TEMP TABLE lead AS
SELECT first_deployed_at, greatest(epoch(first_deployed_at - committed_at) / 3600.0, 0) AS h
FROM chg_df WHERE committed_at IS NOT NULL AND first_deployed_at IS NOT NULL;
"""

SUMMARY = """
WITH dep AS (
    SELECT b.k, count(*) AS n, count(DISTINCT CAST(timezone($tz, a.finished_at) AS DATE)) AS days,
           sum(CASE WHEN a.failed THEN 1 ELSE 0 END) AS failed,
           sum(CASE WHEN a.rework THEN 1 ELSE 0 END) AS rework,
           sum(CASE WHEN a.failed AND a.rec_at IS NULL THEN 1 ELSE 0 END) AS open,
           count(a.rec_at) FILTER (WHERE a.failed) AS recovered,
           quantile_cont(greatest(epoch(a.rec_at - a.finished_at) / 3600.0, 0), [0.5, 0.9])
               FILTER (WHERE a.failed AND a.rec_at IS NOT NULL) AS rq,
           avg(greatest(epoch(a.rec_at - a.finished_at) / 3600.0, 0)) FILTER (WHERE a.failed AND a.rec_at IS NOT NULL) AS rmean
    FROM bk b JOIN ann a ON a.finished_at >= b.s AND a.finished_at < b.e GROUP BY b.k),
lt AS (
    SELECT b.k, count(*) AS changes, quantile_cont(l.h, [0.5, 0.75, 0.9]) AS lq, avg(l.h) AS lmean
    FROM bk b JOIN lead l ON l.first_deployed_at >= b.s AND l.first_deployed_at < b.e GROUP BY b.k)
SELECT b.k, dep.*, lt.changes, lt.lq, lt.lmean FROM bk b LEFT JOIN dep ON dep.k = b.k LEFT JOIN lt ON lt.k = b.k
ORDER BY b.k
"""

WEEKS = """
SELECT CAST(floor(datediff('day', $first, CAST(timezone($tz, finished_at) AS DATE)) / 7) AS INTEGER) AS w,
       count(*) AS n
FROM ann WHERE finished_at >= $s AND finished_at < $e GROUP BY w
"""


def duckdb_report(frames: DoraFrames, window: Window, link_hours: float = 24.0) -> dict[str, Any]:
    """Overall and weekly figures, keyed like analysis.dora.report's JSON."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("deps_df", frames.deployments)
    con.register("chg_df", frames.changes)
    con.register("inc_df", frames.incidents)
    con.register("cl_df", frames.commit_links.astype({"deployment_id": "object", "change_id": "object"}))
    con.execute(ANNOTATE.replace("$link_seconds", str(link_hours * 3600)))
    parts = [window, *buckets(window, "week")]
    con.register(
        "bk", pd.DataFrame({"k": range(len(parts)), "s": [p.start for p in parts], "e": [p.end for p in parts]})
    )
    rows = con.execute(SUMMARY.replace("$tz", f"'{window.tz}'")).fetchall()
    cols = [c[0] for c in con.description]
    out = []
    for part, row in zip(parts, rows):
        r = dict(zip(cols, row))
        n = r["n"] or 0
        item: dict[str, Any] = {
            "deployments": n,
            "failed": r["failed"] or 0,
            "rework": r["rework"] or 0,
            "open": r["open"] or 0,
            "recovered": r["recovered"] or 0,
            "changes": r["changes"] or 0,
        }
        item["per_day"] = n / part.calendar_days if n else None
        item["deploy_day_share"] = (r["days"] / part.calendar_days) if n else None
        item["rate"] = (r["failed"] / n) if n else None
        item["rework_rate"] = (r["rework"] / n) if n else None
        rq = r["rq"] or [None, None]
        item.update(recovery_median=rq[0], recovery_p90=rq[1], recovery_mean=r["rmean"])
        lq = r["lq"] or [None, None, None]
        item.update(lead_median=lq[0], lead_p75=lq[1], lead_p90=lq[2], lead_mean=r["lmean"])
        weeks = part.calendar_days // 7
        if weeks and n:
            first = pd.Timestamp(part.start).tz_convert(window.tz).date()
            counts = dict(
                con.execute(
                    WEEKS.replace("$tz", f"'{window.tz}'"), {"first": first, "s": part.start, "e": part.end}
                ).fetchall()
            )
            values = sorted(counts.get(w, 0) for w in range(weeks))
            mid = len(values) // 2
            item["weekly_median"] = float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
        else:
            item["weekly_median"] = None
        out.append(item)
    con.close()
    return {"overall": out[0], "series": out[1:]}


def _ours(report: dict[str, Any]) -> dict[str, Any]:
    df, lt, cfr, rt, rw = (
        report[k] for k in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "rework_rate")
    )
    return {
        "deployments": df["deployments"],
        "per_day": df["per_day"],
        "deploy_day_share": df["deploy_day_share"],
        "weekly_median": df["weekly_median"],
        "changes": lt["changes"],
        "lead_median": lt["median_hours"],
        "lead_p75": lt["p75_hours"],
        "lead_p90": lt["p90_hours"],
        "lead_mean": lt["mean_hours"],
        "failed": cfr["failed"],
        "rate": cfr["rate"],
        "recovered": rt["recovered"],
        "open": rt["open"],
        "recovery_median": rt["median_hours"],
        "recovery_p90": rt["p90_hours"],
        "recovery_mean": rt["mean_hours"],
        "rework": rw["rework"],
        "rework_rate": rw["rate"],
    }


def compare(report: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """Figures that differ (beyond the report's 4-decimal rounding)."""
    mismatches = []
    pairs = [("overall", _ours(report), reference["overall"])]
    pairs += [
        (f"week {i}", _ours(item), ref)
        for i, (item, ref) in enumerate(zip(report.get("series", []), reference["series"]))
    ]
    if len(report.get("series", [])) != len(reference["series"]):
        mismatches.append("series lengths differ")
    for label, ours, theirs in pairs:
        for key, value in ours.items():
            other = theirs.get(key)
            if value is None or other is None:
                if value is not other and not (value is None and other is None):
                    mismatches.append(f"{label} {key}: ours {value} duckdb {other}")
            elif not math.isclose(float(value), float(other), rel_tol=1e-4, abs_tol=1e-4):
                mismatches.append(f"{label} {key}: ours {value} duckdb {other}")
    return mismatches
