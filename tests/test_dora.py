"""DORA keys on a hand-worked dataset: every figure below was computed by hand from the records.

Window: 2024-03-04 (Monday) to 2024-03-18, end excluded: 14 days, two full weeks.
"""

from __future__ import annotations

import json
import random
from datetime import date

import pytest

from analysis.dora import report
from analysis.windows import window_between
from collector import ingest
from collector.loaders import Scope, load_dora_frames
from gatewatch.errors import ConfigError
from tests.records import change, dep, incident

RECORDS = [
    change("c_old", "api", "2024-02-20T00:00:00Z"),
    change("c_a1", "api", "2024-03-03T22:00:00Z"),
    change("c_a2", "api", "2024-03-04T06:00:00Z"),
    change("c_a3", "api", "2024-03-05T09:00:00Z"),
    change("c_a4", "api", "2024-03-10T12:00:00Z"),
    change("c_w1", "web", "2024-03-06T00:00:00Z"),
    dep("A0", "api", "2024-03-01T10:00:00Z", commits=["c_old"]),  # before the window
    dep("A1", "api", "2024-03-04T10:00:00Z", commits=["c_a1", "c_a2"]),
    dep("A2", "api", "2024-03-05T12:00:00Z", "rolled_back", ["c_a2", "c_a3", "c_old"]),  # c_a2 and c_old again
    dep("A3", "api", "2024-03-05T12:30:00Z", rollback_of="A2"),  # the rollback
    dep("A4", "api", "2024-03-10T23:30:00Z", commits=["c_a4"], hotfix=True),  # 00:30 in Berlin
    dep("A5", "api", "2024-03-11T08:00:00Z"),
    dep("A6", "api", "2024-03-18T02:00:00Z"),  # after the window
    dep("W0", "web", "2024-03-07T10:00:00Z", "rolled_back"),
    dep("W1", "web", "2024-03-06T00:30:00Z", commits=["c_w1"]),
    dep("W2", "web", "2024-03-16T20:00:00Z"),
    dep("W3", "web", "2024-03-08T10:00:00Z", "failure"),  # not a production change
    dep("S1", "web", "2024-03-09T10:00:00Z", env="staging"),  # not production
    incident("I1", "api", "2024-03-11T09:00:00Z", "2024-03-11T11:00:00Z"),  # heuristic: A5
    incident("I2", "web", "2024-03-17T01:00:00Z", deployment_id="W2"),  # explicit, still open
    incident("I3", "api", "2024-03-14T10:00:00Z", "2024-03-14T12:00:00Z"),  # A5 is 74 h before: unlinked
]


def dora_for(engine, tz="UTC", scope=Scope(), by=None):
    window = window_between(date(2024, 3, 4), date(2024, 3, 18), tz)
    return report(load_dora_frames(engine, window.start, window.end, scope), window, by=by)


@pytest.fixture
def store(engine, config):
    summary = ingest.ingest_payloads(engine, RECORDS, config)
    assert summary.quarantined == []
    return engine


def test_hand_worked_report(store):
    r = dora_for(store)
    assert r["window"] == {"start": "2024-03-04T00:00:00+00:00", "end": "2024-03-18T00:00:00+00:00"}
    # A1 A2 A3 A4 A5 W0 W1 W2; days 03-04 03-05 03-06 03-07 03-10 03-11 03-16; weeks 6 and 2.
    assert r["deployment_frequency"] == {
        "deployments": 8,
        "per_day": round(8 / 14, 4),
        "per_week": 4.0,
        "deploy_day_share": 0.5,
        "weekly_median": 4.0,
        "tier": "high",
    }
    # Lead times (h): c_w1 0.5, c_a3 3, c_a2 4 (first in A1, not A2), c_a4 11.5, c_a1 12; c_old was first
    # deployed before the window. p75 = 11.5; p90 = 11.5 + 0.6 * 0.5 = 11.8; mean = 31 / 5.
    assert r["lead_time"] == {
        "changes": 5,
        "median_hours": 4.0,
        "p75_hours": 11.5,
        "p90_hours": 11.8,
        "mean_hours": 6.2,
        "tier": "elite",
    }
    # Failed: A2 (rolled back), A5 (I1 by the 24 h heuristic), W0 (rolled back), W2 (I2 explicitly).
    assert r["change_failure_rate"] == {"failed": 4, "deployments": 8, "rate": 0.5, "tier": "low"}
    # Recovery: A2 by its rollback A3 (0.5 h), A5 when I1 resolved (3 h), W0 by the next web deployment
    # W2 (226 h); W2 is open (I2 unresolved). p90 = 3 + 0.8 * 223 = 181.4; mean = 229.5 / 3.
    assert r["recovery_time"] == {
        "failures": 4,
        "recovered": 3,
        "open": 1,
        "median_hours": 3.0,
        "p90_hours": 181.4,
        "mean_hours": 76.5,
        "tier": "high",
    }
    # Rework: A3 (a rollback) and A4 (a hotfix).
    assert r["rework_rate"] == {"rework": 2, "deployments": 8, "rate": 0.25}
    assert r["benchmark"] == "dora-2024"


def test_time_zone_moves_deployments_across_midnight(store):
    r = dora_for(store, tz="Europe/Berlin")
    # In Berlin the window starts 03-03 23:00 UTC. A4 (23:30 UTC on 03-10) lands on 03-11 with A5, so
    # there are 6 deploy days, and week one holds 5 deployments, week two 3.
    assert r["window"]["start"] == "2024-03-04T00:00:00+01:00"
    assert r["deployment_frequency"]["deployments"] == 8
    assert r["deployment_frequency"]["deploy_day_share"] == round(6 / 14, 4)
    assert r["deployment_frequency"]["weekly_median"] == 4.0
    by_day = {
        item["window"]["start"][:10]: item["deployment_frequency"]["deployments"]
        for item in dora_for(store, tz="Europe/Berlin", by="day")["series"]
    }
    assert by_day["2024-03-10"] == 0 and by_day["2024-03-11"] == 2
    utc_by_day = {
        item["window"]["start"][:10]: item["deployment_frequency"]["deployments"]
        for item in dora_for(store, by="day")["series"]
    }
    assert utc_by_day["2024-03-10"] == 1 and utc_by_day["2024-03-11"] == 1


def test_weekly_series(store):
    weeks = dora_for(store, by="week")["series"]
    assert [w["window"]["start"][:10] for w in weeks] == ["2024-03-04", "2024-03-11"]
    first, second = weeks
    assert first["deployment_frequency"]["deployments"] == 6 and second["deployment_frequency"]["deployments"] == 2
    assert first["change_failure_rate"]["failed"] == 2 and second["change_failure_rate"]["failed"] == 2
    assert first["lead_time"]["changes"] == 5 and second["lead_time"]["median_hours"] is None
    assert second["lead_time"]["reason"]


def test_filters_by_service_and_team(store):
    web = dora_for(store, scope=Scope(service="web"))
    assert web["deployment_frequency"]["deployments"] == 3
    assert web["change_failure_rate"] == {"failed": 2, "deployments": 3, "rate": round(2 / 3, 4), "tier": "low"}
    assert web["lead_time"]["changes"] == 1 and web["lead_time"]["median_hours"] == 0.5
    core = dora_for(store, scope=Scope(team="core"))
    assert core["deployment_frequency"]["deployments"] == 5
    assert core["rework_rate"]["rework"] == 2
    staging = dora_for(store, scope=Scope(environment="staging"))
    assert staging["deployment_frequency"]["deployments"] == 1


def test_no_data_is_null_with_a_reason_never_zero(engine):
    r = dora_for(engine)
    for metric, field in (
        ("deployment_frequency", "per_day"),
        ("lead_time", "median_hours"),
        ("change_failure_rate", "rate"),
        ("recovery_time", "median_hours"),
        ("rework_rate", "rate"),
    ):
        assert r[metric][field] is None and r[metric]["reason"], metric
        assert r[metric].get("tier") is None


def test_link_window_is_configurable(store):
    window = window_between(date(2024, 3, 4), date(2024, 3, 18))
    from datetime import timedelta

    wide = report(
        load_dora_frames(store, window.start, window.end, link_window=timedelta(hours=80)),
        window,
        link_window=timedelta(hours=80),
    )
    # I3 (74 h after A5) now also links to A5: no new failure, but A5 recovers at I3's resolution.
    assert wide["change_failure_rate"]["failed"] == 4
    assert wide["recovery_time"]["median_hours"] == 76.0  # A5: 03-11 08:00 -> 03-14 12:00


def test_cli_json_is_identical_on_sqlite_and_postgres(tmp_path, store_url, engine, config, gatewatch):
    ingest.ingest_payloads(engine, RECORDS, config)
    res = gatewatch("--db", store_url, "dora", "--start", "2024-03-04", "--end", "2024-03-18", "--by", "week", "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    sqlite_url = f"sqlite:///{tmp_path / 'reference.db'}"
    (tmp_path / "records.json").write_text(json.dumps(RECORDS))
    assert gatewatch("--db", sqlite_url, "ingest", str(tmp_path / "records.json")).returncode == 0
    reference = json.loads(
        gatewatch(
            "--db", sqlite_url, "dora", "--start", "2024-03-04", "--end", "2024-03-18", "--by", "week", "--json"
        ).stdout
    )
    assert got == reference
    assert got["change_failure_rate"]["rate"] == 0.5 and len(got["series"]) == 2


def test_cli_human_and_csv_output(tmp_path, gatewatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "records.json").write_text(json.dumps(RECORDS))
    gatewatch("--db", url, "ingest", str(tmp_path / "records.json"))
    human = gatewatch("--db", url, "dora", "--start", "2024-03-04", "--end", "2024-03-18")
    assert human.returncode == 0
    assert "Change failure rate" in human.stdout and "50.0% (4 of 8)" in human.stdout
    csv_out = gatewatch("--db", url, "dora", "--start", "2024-03-04", "--end", "2024-03-18", "--by", "week", "--csv")
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("start,end,deployment_frequency.deployments")
    assert len(lines) == 3 and lines[1].split(",")[2] == "6"
    bad = gatewatch("--db", url, "dora", "--start", "2024-03-18", "--end", "2024-03-04")
    assert bad.returncode == 2 and "must be after" in bad.stderr
    bad = gatewatch("--db", url, "dora", "--tz", "Mars/Olympus")
    assert bad.returncode == 2 and "unknown time zone" in bad.stderr


def test_result_does_not_depend_on_ingest_order(engine, config, tmp_path):
    from collector.db import create_store_engine, upgrade

    ingest.ingest_payloads(engine, RECORDS, config)
    expected = dora_for(engine, by="day")
    shuffled = RECORDS[:]
    random.Random(3).shuffle(shuffled)
    other = create_store_engine(f"sqlite:///{tmp_path / 'shuffled.db'}")
    upgrade(other)
    ingest.ingest_payloads(other, shuffled, config)
    assert dora_for(other, by="day") == expected
    other.dispose()


def test_demo_dataset_through_the_cli_matches_the_python_api(tmp_path, store_url, gatewatch):
    """The demo organisation, ingested like real events, reported by the CLI and by the API alike."""
    from collector.config import load_config
    from collector.db import create_store_engine

    res = gatewatch(
        "--db", store_url, "demo", "--services", "4", "--days", "35", "--seed", "3", "--end", "2024-06-01", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    args = ["--db", store_url, "dora", "--start", "2024-05-06", "--end", "2024-05-27", "--by", "week", "--json"]
    cli = json.loads(gatewatch(*args, cwd=tmp_path).stdout)
    assert cli["deployment_frequency"]["deployments"] > 20 and cli["lead_time"]["changes"] > 20
    assert 0 < cli["change_failure_rate"]["rate"] < 0.5 and cli["recovery_time"]["recovered"] > 0
    assert len(cli["series"]) == 3  # Monday weeks
    engine = create_store_engine(store_url)
    window = window_between(date(2024, 5, 6), date(2024, 5, 27))
    api = report(load_dora_frames(engine, window.start, window.end, Scope()), window, by="week")
    engine.dispose()
    cli.pop("filters")
    assert cli == json.loads(json.dumps(api))
    team = load_config(tmp_path / "gatewatch.yaml").teams
    some_team = sorted(set(team.values()))[0]
    by_team = json.loads(
        gatewatch(
            "--db",
            store_url,
            "dora",
            "--start",
            "2024-05-06",
            "--end",
            "2024-05-27",
            "--team",
            some_team,
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert 0 < by_team["deployment_frequency"]["deployments"] < cli["deployment_frequency"]["deployments"]


def test_benchmark_tables_and_a_custom_one_from_config(store, tmp_path, store_url, gatewatch):
    from analysis.tiers import BENCHMARKS, benchmark_from_mapping, get_benchmark

    window = window_between(date(2024, 3, 4), date(2024, 3, 18))
    frames = load_dora_frames(store, window.start, window.end)
    r2023 = report(frames, window, benchmark="dora-2023")
    # CFR 50%: above 2023's medium bound (15%) but within its low cluster's 64%; still "low".
    assert r2023["benchmark"] == "dora-2023" and r2023["change_failure_rate"]["tier"] == "low"
    # Recovery median 3 h: 2023 high is "less than one day".
    assert r2023["recovery_time"]["tier"] == "high"
    assert BENCHMARKS["dora-2024"].tier("change_failure_rate", 0.15) == "high"  # 2024's high is 20%
    assert BENCHMARKS["dora-2023"].tier("change_failure_rate", 0.15) == "medium"
    strict = benchmark_from_mapping("strict", {"lead_time": {"elite": 1, "high": 5}})
    assert strict.tier("lead_time", 4.0) == "high" and strict.tier("lead_time", 6.0) == "low"
    with pytest.raises(ConfigError, match="unknown metric"):
        benchmark_from_mapping("bad", {"latency": {"elite": 1}})
    with pytest.raises(ConfigError, match="unknown benchmark"):
        get_benchmark("dora-1999")
    # From gatewatch.yaml, through the CLI.
    (tmp_path / "gatewatch.yaml").write_text(
        "dora:\n  benchmark: strict\n  benchmarks:\n    strict:\n      lead_time: {elite: 1, high: 5}\n"
    )
    (tmp_path / "records.json").write_text(json.dumps(RECORDS))
    url = f"sqlite:///{tmp_path / 's.db'}"
    gatewatch("--db", url, "ingest", str(tmp_path / "records.json"), cwd=tmp_path)
    out = json.loads(
        gatewatch("--db", url, "dora", "--start", "2024-03-04", "--end", "2024-03-18", "--json", cwd=tmp_path).stdout
    )
    assert out["benchmark"] == "strict" and out["lead_time"]["tier"] == "high"  # median 4 h: under 5, not 1
    assert out["change_failure_rate"]["tier"] == "low"  # no bounds for this metric in the table: low
