"""The policy matrix at the level of real checks: every check type passing, failing and (where it can)
without data, and what missing data does under each policy setting; evaluated on a real store."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import yaml

from collector.config import config_from_mapping
from collector.ingest import ingest_payloads
from collector.timeutil import utcnow
from gates.policy import policy_from_mapping
from gatewatch import api

NOW = utcnow().replace(second=0, microsecond=0)
CANARY = {
    "metrics": [{"name": "latency", "direction": "increase", "tolerance": 0.1, "critical": True, "min_samples": 10}]
}


def canary_files(tmp_path, state: str) -> dict:
    rng = np.random.default_rng(11)
    n, shift = {"pass": (100, 1.0), "fail": (100, 1.4), "nodata": (3, 1.0)}[state]
    rows = [
        {"metric": "latency", "group": g, "value": v}
        for g, s in (("baseline", 1.0), ("canary", shift))
        for v in rng.normal(100 * s, 5, n)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "samples.csv", index=False)
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(CANARY))
    return {"config": "canary.yaml", "data": "samples.csv"}


def slo_file(tmp_path, state: str) -> str:
    """Hourly SLI counts over two days, 1,000 events an hour, objective 99.9%: `pass` no errors; `fail`
    86 bad events in the last hour (the window's 48,000 events allow 48: overspent; and the last hour
    burns 0.086 / 0.001 = 86x, over every pair's threshold); `nodata` every count older than the window."""
    hours = [NOW - timedelta(hours=h) for h in range(48)]
    if state == "nodata":
        hours = [h - timedelta(days=60) for h in hours]
    bad = [0] * len(hours)
    if state == "fail":
        bad[0] = 86
    pd.DataFrame({"timestamp": [h.isoformat() for h in hours], "good": [1000 - b for b in bad], "total": 1000}).to_csv(
        tmp_path / "sli.csv", index=False
    )
    (tmp_path / "slo.yaml").write_text(
        yaml.safe_dump({"service": "checkout", "objective": 99.9, "window": "28d", "sli": {"data": "sli.csv"}})
    )
    return "slo.yaml"


def dora_store(engine, state: str) -> None:
    """`pass`: four clean production deployments; `fail`: one of them caused an incident (rate 0.25 > 0.2);
    `nodata`: no deployment at all."""
    if state == "nodata":
        return
    records = [
        {
            "type": "deployment",
            "id": f"d{i}",
            "service": "checkout",
            "environment": "production",
            "status": "success",
            "started_at": (NOW - timedelta(days=i, minutes=10)).isoformat(),
            "finished_at": (NOW - timedelta(days=i)).isoformat(),
        }
        for i in range(1, 5)
    ]
    if state == "fail":
        records.append(
            {
                "type": "incident",
                "id": "INC-1",
                "service": "checkout",
                "deployment_id": "d2",
                "opened_at": (NOW - timedelta(days=2) + timedelta(hours=1)).isoformat(),
                "resolved_at": (NOW - timedelta(days=2) + timedelta(hours=3)).isoformat(),
            }
        )
    assert ingest_payloads(engine, records, config_from_mapping({}, environ={})).stored == len(records)


def check_for(kind: str, state: str, tmp_path, engine) -> dict:
    if kind == "canary":
        return {"canary": canary_files(tmp_path, state)}
    if kind == "error_budget":
        return {"error_budget": {"slo": slo_file(tmp_path, state), "min_remaining": 0.25}}
    if kind == "burn_rate":
        return {"burn_rate": {"slo": slo_file(tmp_path, state)}}
    if kind == "deploy_window":
        frozen = [{"from": "2000-01-01", "to": "2100-01-01", "reason": "matrix"}] if state == "fail" else []
        return {"deploy_window": {"timezone": "Europe/Berlin", "allow": ["Mon-Sun 00:00-24:00"], "freeze": frozen}}
    dora_store(engine, state)
    return {"dora": {"metric": "change_failure_rate", "max": 0.2, "since": "30d", "service": "checkout"}}


def evaluate(engine, policy, request: api.GateRequest) -> api.StoredDecision:
    """The service API's gate evaluation at NOW, with the default configuration."""
    return api.evaluate_gate(engine, config_from_mapping({}, environ={}), policy, request, now=NOW)


CASES = [(k, s) for k in ("canary", "error_budget", "burn_rate", "dora") for s in ("pass", "fail", "nodata")]
CASES += [("deploy_window", "pass"), ("deploy_window", "fail")]  # a window always has its data: the clock


@pytest.mark.parametrize("kind, state", CASES)
@pytest.mark.parametrize("on_fail", ["rollback", "hold"])
def test_each_check_passes_fails_or_has_no_data(kind, state, on_fail, tmp_path, engine):
    check = check_for(kind, state, tmp_path, engine) | {"on_fail": on_fail}
    policy = policy_from_mapping({"name": "matrix", "checks": [check]}, base_dir=tmp_path)
    stored = evaluate(engine, policy, api.GateRequest(service="checkout", key=f"{kind}-{state}-{on_fail}"))
    assert [c["status"] for c in stored.checks] == [state], stored.checks
    assert "unavailable" not in stored.checks[0]["evidence"]  # no data is not an outage
    expected = {"pass": "promote", "fail": on_fail, "nodata": "hold"}[state]  # the default: fail closed
    assert stored.decision == expected, stored.reasons


@pytest.mark.parametrize("missing, expected", [("hold", "hold"), ("ignore", "promote"), ("rollback", "rollback")])
def test_missing_data_follows_the_policy_and_a_check_can_override_it(missing, expected, tmp_path, engine):
    checks = [
        {"canary": canary_files(tmp_path, "nodata"), "on_fail": "rollback"},
        {"deploy_window": {"timezone": "UTC", "allow": ["Mon-Sun 00:00-24:00"]}, "on_fail": "hold"},
    ]
    policy = policy_from_mapping({"name": "m", "on_missing_data": missing, "checks": checks}, base_dir=tmp_path)
    stored = evaluate(engine, policy, api.GateRequest(key=f"policy-{missing}"))
    assert stored.decision == expected and stored.checks[0]["status"] == "nodata"
    assert stored.checks[0]["effect"] == ("none" if missing == "ignore" else missing)
    checks[0]["on_missing_data"] = "ignore" if missing != "ignore" else "hold"  # the check's word wins
    policy = policy_from_mapping({"name": "m", "on_missing_data": missing, "checks": checks}, base_dir=tmp_path)
    overridden = evaluate(engine, policy, api.GateRequest(key=f"check-{missing}"))
    assert overridden.decision == ("promote" if missing != "ignore" else "hold")


def unlinked_incident_store(engine) -> None:
    """Four clean production deployments of checkout, and an incident of checkout opened 12 hours after
    the second with no link to any deployment: blamed on it within a 24 h link window, not within 6 h."""
    dora_store(engine, "pass")
    opened = NOW - timedelta(days=2) + timedelta(hours=12)
    incident = {
        "type": "incident",
        "id": "INC-9",
        "service": "checkout",
        "opened_at": opened.isoformat(),
        "resolved_at": (opened + timedelta(hours=1)).isoformat(),
    }
    assert ingest_payloads(engine, [incident], config_from_mapping({}, environ={})).stored == 1


DORA_GATE = {
    "name": "dora-gate",
    "checks": [
        {
            "dora": {"metric": "change_failure_rate", "max": 0.2, "since": "30d", "service": "checkout"},
            "on_fail": "hold",
        }
    ],
}
OURS = {"change_failure_rate": {"elite": 0.3, "high": 0.5, "medium": 0.6}}


@pytest.mark.parametrize(
    "settings, decision, rate, tier, benchmark",
    [
        ({}, "hold", 0.25, "low", "dora-2024"),  # the defaults: 24 h, dora-2024
        ({"link_window": "6h"}, "promote", 0.0, "elite", "dora-2024"),  # the incident is not blamed
        ({"benchmark": "ours", "benchmarks": {"ours": OURS}}, "hold", 0.25, "elite", "ours"),
    ],
)
def test_a_dora_check_uses_the_configured_link_window_and_benchmark(settings, decision, rate, tier, benchmark, engine):
    """The gate's DORA figures are the report's (`gatewatch dora` with the same gatewatch.yaml)."""
    unlinked_incident_store(engine)
    config = config_from_mapping({"dora": settings} if settings else {}, environ={})
    stored = api.evaluate_gate(engine, config, policy_from_mapping(DORA_GATE), api.GateRequest(key="k"), now=NOW)
    assert stored.decision == decision, stored.reasons
    evidence = stored.checks[0]["evidence"]
    assert (evidence["change_failure_rate"], evidence["tier"], evidence["benchmark"]) == (rate, tier, benchmark)
    report = api.dora_report(engine, config, api.window_since(30, NOW), api.Scope(service="checkout"))
    assert report["change_failure_rate"]["rate"] == rate and report["change_failure_rate"]["tier"] == tier
    assert evidence["link_window_hours"] == report["link_window_hours"]


def test_gate_check_reads_the_dora_settings_of_gatewatch_yaml(store_url, engine, tmp_path, gatewatch):
    unlinked_incident_store(engine)
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(DORA_GATE))
    config = tmp_path / "gatewatch.yaml"
    config.write_text(yaml.safe_dump({"dora": {"link_window": "6h"}}))
    held = gatewatch("--db", store_url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"), "--key", "a")
    promoted = gatewatch(
        "--db",
        store_url,
        "--config",
        str(config),
        "gate",
        "check",
        "--policy",
        str(tmp_path / "gate.yaml"),
        "--key",
        "b",
    )
    assert (held.returncode, promoted.returncode) == (3, 0), (held.stdout, promoted.stdout)
    assert "incidents linked within 6 h" in promoted.stdout and "within 24 h" in held.stdout
