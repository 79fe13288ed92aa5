"""`gatewatch gate check` end to end against a real Prometheus: a canary judged from range queries and
error-budget / burn-rate checks on Prometheus SLOs, over history backfilled with promtool."""

from __future__ import annotations

import json

import pytest
import yaml

from tests import prometheus_server
from tests.prometheus_server import CANARY_CONFIG as CONFIG
from tests.prometheus_server import MINUTES, checkout_bad, window_counts


@pytest.fixture
def server(prometheus_recent):
    """This module's own Prometheus (conftest): `gate check` reads the history at now, so it must be recent."""
    return prometheus_recent


def slo(job: str, url: str) -> dict:
    return {
        "service": job,
        "name": "availability",
        "objective": 99.9,
        "window": "28d",
        "prometheus": {"url": url},
        "sli": {
            "ratio": {
                "good": f'http_requests_total{{job="{job}",code!~"5.."}}',
                "total": f'http_requests_total{{job="{job}"}}',
            }
        },
    }


def policy(tmp_path, url: str, job: str = "checkout", slo_url: str | None = None, canary: str = 'version="v3"') -> str:
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "slo.yaml").write_text(yaml.safe_dump(slo(job, slo_url or url)))
    gate = {
        "name": f"{job}-prod",
        "checks": [
            {
                "canary": {
                    "config": "canary.yaml",
                    "prometheus": {
                        "url": url,
                        "baseline": 'version="v1"',
                        "canary": canary,
                        "window": "90m",
                        "step": "15s",
                    },
                },
                "on_fail": "rollback",
            },
            {"error_budget": {"slo": "slo.yaml", "min_remaining": 0.25}, "on_fail": "hold"},
            {"burn_rate": {"slo": "slo.yaml"}, "on_fail": "rollback"},
        ],
    }
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(gate))
    return str(tmp_path / "gate.yaml")


def check(gatewatch, store_url: str, gate: str, *extra: str):
    res = gatewatch("--db", store_url, "gate", "check", "--policy", gate, "--json", *extra)
    return res, (json.loads(res.stdout) if res.stdout else None)


def test_regressed_canary_rolls_back_and_a_healthy_one_promotes(server, tmp_path, store_url, gatewatch):
    gate = policy(tmp_path, server.url)
    res, out = check(gatewatch, store_url, gate)
    assert res.returncode == 1, res.stderr
    assert out["decision"] == "rollback" and out["reasons"][0].startswith("canary: canary fail")
    statuses = {c["name"]: c["status"] for c in out["checks"]}
    assert statuses == {"canary": "fail", "error_budget": "pass", "burn_rate": "pass"}
    good, total = window_counts(checkout_bad, MINUTES)  # 438 errors of 4,380,000: 10% of the budget used
    budget = next(c for c in out["checks"] if c["name"] == "error_budget")["evidence"]
    assert budget["error_budget_remaining"] == pytest.approx(1 - (total - good) / (0.001 * total), rel=1e-6)
    assert budget["slo"] == "checkout/availability" and out["evidence"]["canary_run_id"]
    human = gatewatch("--db", store_url, "gate", "check", "--policy", gate)
    assert human.returncode == 1 and "decision: ROLLBACK" in human.stdout
    # the caller's scope: the healthy version
    res, out = check(gatewatch, store_url, gate, "--canary", 'version="v2"')
    assert res.returncode == 0, res.stderr
    assert out["decision"] == "promote" and [c["status"] for c in out["checks"]] == ["pass"] * 3


def test_a_burning_slo_rolls_back_a_healthy_canary(server, tmp_path, store_url, gatewatch):
    res, out = check(gatewatch, store_url, policy(tmp_path, server.url, job="api", canary='version="v2"'))
    assert res.returncode == 1, res.stderr
    statuses = {c["name"]: c["status"] for c in out["checks"]}
    assert statuses == {"canary": "pass", "error_budget": "pass", "burn_rate": "fail"}
    assert out["decision"] == "rollback" and "over 6h" in out["reasons"][0] and "exceed 6.0x" in out["reasons"][0]


def test_telemetry_outage_holds_and_never_promotes(server, tmp_path, store_url, gatewatch):
    closed = f"http://127.0.0.1:{prometheus_server.free_port()}"
    res, out = check(gatewatch, store_url, policy(tmp_path, server.url, slo_url=closed, canary='version="v2"'))
    assert res.returncode == 3, res.stderr
    checks = {c["name"]: c for c in out["checks"]}
    assert out["decision"] == "hold" and checks["canary"]["status"] == "pass"
    for name in ("error_budget", "burn_rate"):  # burn_rate's on_fail is rollback; missing data holds
        assert checks[name]["status"] == "nodata" and checks[name]["effect"] == "hold"
        assert closed in checks[name]["reason"]
        assert closed in checks[name]["evidence"]["unavailable"][0]  # an outage, marked as such
