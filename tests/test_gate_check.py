"""`gatewatch gate check` end to end on real files and a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import yaml

CANARY = {"metrics": [{"name": "latency", "direction": "increase", "tolerance": 0.1, "critical": True}]}


def setup(
    tmp_path,
    canary_shift: float,
    errors_per_minute: int = 0,
    window: str = "Mon-Sun 00:00-24:00",
    on_missing: str = "hold",
    sli: bool = True,
):
    rng = np.random.default_rng(4)
    rows = [
        {"metric": "latency", "group": g, "value": v}
        for g, s in (("baseline", 1.0), ("canary", canary_shift))
        for v in rng.normal(100 * s, 5, 100)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "samples.csv", index=False)
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(CANARY))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = [now - timedelta(minutes=i) for i in range(3 * 24 * 60)]
    if sli:
        pd.DataFrame(
            {
                "timestamp": [m.isoformat() for m in minutes],
                "good": [1000 - (errors_per_minute if i < 60 else 0) for i in range(len(minutes))],
                "total": 1000,
            }
        ).to_csv(tmp_path / "sli.csv", index=False)
    (tmp_path / "slo.yaml").write_text(
        yaml.safe_dump({"service": "checkout", "objective": 99.9, "window": "28d", "sli": {"data": "sli.csv"}})
    )
    policy = {
        "name": "checkout-prod",
        "on_missing_data": on_missing,
        "checks": [
            {"canary": {"config": "canary.yaml", "data": "samples.csv"}, "on_fail": "rollback"},
            {"error_budget": {"slo": "slo.yaml", "min_remaining": 0.25}, "on_fail": "hold"},
            {"burn_rate": {"slo": "slo.yaml"}, "on_fail": "rollback"},
            {"deploy_window": {"timezone": "Europe/Berlin", "allow": [window]}, "on_fail": "hold"},
        ],
    }
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(policy))
    return str(tmp_path / "gate.yaml")


def test_healthy_deployment_is_promoted_and_retries_return_the_stored_decision(tmp_path, store_url, gatewatch):
    policy = setup(tmp_path, 1.0)
    outputs, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    env = {"GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)}
    res = gatewatch("--db", store_url, "gate", "check", "--policy", policy, "--key", "job-1", "--json", env=env)
    assert res.returncode == 0, res.stderr
    first = json.loads(res.stdout)
    assert first["decision"] == "promote" and [c["status"] for c in first["checks"]] == ["pass"] * 4
    assert first["evidence"]["canary_run_id"] and first["replayed"] is False
    assert "decision=promote" in outputs.read_text() and "**promote**" in summary.read_text()
    setup(tmp_path, 1.4)  # the data changes, but a retry with the same key must not decide again
    again = json.loads(
        gatewatch("--db", store_url, "gate", "check", "--policy", policy, "--key", "job-1", "--json").stdout
    )
    assert again["id"] == first["id"] and again["decision"] == "promote" and again["replayed"] is True


def test_regressed_canary_rolls_back(tmp_path, store_url, gatewatch):
    res = gatewatch("--db", store_url, "gate", "check", "--policy", setup(tmp_path, 1.4), "--json")
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert out["decision"] == "rollback" and out["reasons"][0].startswith("canary: canary fail")


def test_fast_burn_rolls_back_and_a_closed_window_holds(tmp_path, store_url, gatewatch):
    burning = json.loads(
        gatewatch(
            "--db", store_url, "gate", "check", "--policy", setup(tmp_path, 1.0, errors_per_minute=30), "--json"
        ).stdout
    )
    assert burning["decision"] == "rollback" and "burn_rate" in burning["reasons"][0]
    closed = gatewatch(
        "--db", store_url, "gate", "check", "--policy", setup(tmp_path, 1.0, window="Mon 00:00-00:01"), "--json"
    )
    statuses = {c["name"]: c["status"] for c in json.loads(closed.stdout)["checks"]}
    if statuses["deploy_window"] == "fail":  # unless the test runs in that very minute
        assert closed.returncode == 3 and json.loads(closed.stdout)["decision"] == "hold"


def test_missing_telemetry_holds_never_promotes(tmp_path, store_url, gatewatch):
    res = gatewatch("--db", store_url, "gate", "check", "--policy", setup(tmp_path, 1.0, sli=False), "--json")
    out = json.loads(res.stdout)
    assert res.returncode == 3 and out["decision"] == "hold"
    assert {c["name"]: c["status"] for c in out["checks"]}["error_budget"] == "nodata"
    ignoring = gatewatch(
        "--db", store_url, "gate", "check", "--policy", setup(tmp_path, 1.0, sli=False, on_missing="ignore"), "--json"
    )
    assert json.loads(ignoring.stdout)["decision"] == "promote"


def test_bad_policy_exits_2_naming_the_field(tmp_path, store_url, gatewatch):
    (tmp_path / "gate.yaml").write_text("name: g\nchecks:\n  - burn_rate: {slo: s.yaml}\n    on_fail: page\n")
    res = gatewatch("--db", store_url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"))
    assert res.returncode == 2 and "checks[0].on_fail" in res.stderr and "Traceback" not in res.stderr


def test_a_held_key_is_evaluated_again_and_a_final_decision_is_kept(tmp_path, store_url, gatewatch):
    args = ("--db", store_url, "gate", "check", "--key", "run-7", "--json", "--policy")
    held = json.loads(gatewatch(*args, setup(tmp_path, 1.0, sli=False)).stdout)
    assert held["decision"] == "hold" and held["attempt"] == 1
    promoted = json.loads(gatewatch(*args, setup(tmp_path, 1.0)).stdout)  # the SLI data arrived
    assert promoted["decision"] == "promote" and promoted["attempt"] == 2 and promoted["id"] != held["id"]
    kept = json.loads(gatewatch(*args, setup(tmp_path, 1.0, sli=False)).stdout)
    assert kept["id"] == promoted["id"] and kept["replayed"] is True


def test_two_gate_processes_racing_on_one_key_make_one_decision(tmp_path, store_url):
    """Two `gatewatch gate check` processes on one store and key: one decides, both answer its decision."""
    import subprocess
    import sys
    from pathlib import Path

    from collector.db import create_store_engine, upgrade
    from collector.gate_decisions import list_decisions

    engine = create_store_engine(store_url)
    upgrade(engine)  # migrate first, so the race is on the decision and not on the schema
    policy = setup(tmp_path, 1.4)
    exe = Path(sys.executable).with_name("gatewatch")
    args = [str(exe), "--db", store_url, "gate", "check", "--policy", policy, "--key", "race", "--json"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    answers = [json.loads(out) for out, _ in outs]
    assert [p.returncode for p in procs] == [1, 1], [err for _, err in outs]
    assert answers[0]["id"] == answers[1]["id"] and {a["decision"] for a in answers} == {"rollback"}
    assert sorted(a["replayed"] for a in answers) == [False, True]  # exactly one process decided
    assert len(list_decisions(engine)) == 1
    engine.dispose()
