"""`gatewatch slo rules`: Prometheus recording and burn-rate alerting rules from SLO files, checked by
`promtool check rules`, unit-tested with `promtool test rules` (a burning service pages, a service
within its budget fires nothing), and loaded into a real Prometheus over backfilled history whose
recorded expressions give the error ratios worked out by hand from the counts."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from analysis.slo_rules import ALERT, budget, rule_windows
from collector.config import config_from_mapping
from collector.telemetry.sli import load_slo
from gatewatch.schema import duration_label
from gatewatch.services.slos import alert_rules, rules_yaml
from tests import prometheus_server
from tests.prometheus_server import api_bad, api_slow, window_counts
from tests.test_slo_files import run, write_slo

PROMTOOL = prometheus_server.binaries()[1]
URL = "http://prometheus.invalid:9090"  # rules never read the server: any URL


def ratio_slo(job: str, objective: float = 99.9, **extra: object) -> dict:
    return {
        "service": job,
        "name": "availability",
        "objective": objective,
        "window": "28d",
        "prometheus": {"url": URL},
        "sli": {
            "ratio": {
                "good": f'http_requests_total{{job="{job}",code!~"5.."}}',
                "total": f'http_requests_total{{job="{job}"}}',
            }
        },
        **extra,
    }


LATENCY = {
    "service": "api",
    "name": "latency",
    "objective": 99,
    "prometheus": {"url": URL},
    "sli": {"threshold": {"metric": "http_request_duration_seconds", "le": "0.3", "selector": {"job": "api"}}},
}


def write_config(folder: Path, slos: Path) -> Path:
    path = folder / "gatewatch.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "slos": str(slos),
                "teams": {"api": "payments", "checkout": "shop"},
                "runbooks": {"api": "https://runbooks.example.com/api"},
            }
        )
    )
    return path


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def slo_folder(tmp_path) -> Path:
    folder = tmp_path / "slos"
    folder.mkdir()
    write_slo(folder, "api", ratio_slo("api"))
    write_slo(folder, "checkout", ratio_slo("checkout", runbook_url="https://wiki.example.com/checkout-slo"))
    write_slo(folder, "latency", LATENCY)
    return folder


# --- the generated rules -----------------------------------------------------------------------------------


def test_rules_record_every_window_and_alert_on_both_windows_of_each_pair(slo_folder):
    config = config_from_mapping({"teams": {"api": "payments"}}, environ={})
    found = alert_rules(config, [load_slo(slo_folder / "api.yaml")])
    records, alerts = found.slos[0]["groups"]
    windows = [r["labels"]["window"] for r in records["rules"]]
    assert windows == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] == [duration_label(w) for w in rule_windows()]
    assert all(r["record"] == f"slo:sli_error:ratio_rate{r['labels']['window']}" for r in records["rules"])
    assert 'http_requests_total{job="api",code!~"5.."}[1h]' in records["rules"][2]["expr"]
    page, ticket = alerts["rules"]
    assert page["labels"] == {"severity": "page", "service": "api", "slo": "availability", "team": "payments"}
    assert ticket["labels"]["severity"] == "ticket" and "runbook_url" not in page["annotations"]
    # burn rate x (1 - objective), on the long and the short window of each pair
    for expected in ("ratio_rate1h", "ratio_rate5m", "(14.4 * 0.001)", "ratio_rate6h", "ratio_rate30m", "(6 * 0.001)"):
        assert expected in page["expr"]
    for expected in ("ratio_rate1d", "ratio_rate2h", "(3 * 0.001)", "ratio_rate3d", "ratio_rate6h", "(1 * 0.001)"):
        assert expected in ticket["expr"]
    assert budget(0.999) == 0.001 and budget(0.9995) == 0.0005


def test_label_values_are_escaped_in_promql_and_the_file_passes_promtool(tmp_path):
    spec = load_slo(write_slo(tmp_path, "odd", ratio_slo("api") | {"service": 'we"ird\\svc', "name": "a b"}))
    found = alert_rules(config_from_mapping({}, environ={}), [spec])
    page = found.slos[0]["groups"][1]["rules"][0]
    assert 'service="we\\"ird\\\\svc", slo="a b"' in page["expr"]
    assert found.slos[0]["file"] == "we_ird_svc-a_b.rules.yaml"
    path = tmp_path / found.slos[0]["file"]
    path.write_text(rules_yaml(found.groups))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout


def test_cli_writes_a_file_per_slo_that_promtool_accepts_and_skips_a_csv_slo(tmp_path, slo_folder):
    (slo_folder / "sli.csv").write_text("timestamp,good,total\n2024-05-01T00:00:00Z,1,1\n")
    write_slo(slo_folder, "batch", {"service": "batch", "objective": 99, "sli": {"data": "sli.csv"}})
    config = write_config(tmp_path, slo_folder)
    out = tmp_path / "rules"
    done = run("--config", str(config), "slo", "rules", "--all", "--out", str(out), "--json")
    assert done.returncode == 1, done.stderr  # an SLO was skipped
    assert "note: SLO batch/batch skipped: its SLI is read from a CSV file" in done.stderr
    report = json.loads(done.stdout)
    assert [s["reason"].split(" (")[0] for s in report["skipped"]] == ["its SLI is read from a CSV file"]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["api-availability.rules.yaml", "api-latency.rules.yaml", "checkout-availability.rules.yaml"]
    assert sorted(Path(s["file"]).name for s in report["slos"]) == files
    checked = promtool("check", "rules", *(str(out / f) for f in files))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checkout = yaml.safe_load((out / "checkout-availability.rules.yaml").read_text())
    page = checkout["groups"][1]["rules"][0]
    assert page["labels"]["team"] == "shop"
    assert page["annotations"]["runbook_url"] == "https://wiki.example.com/checkout-slo"  # the SLO's own wins
    api = yaml.safe_load((out / "api-availability.rules.yaml").read_text())
    assert api["groups"][1]["rules"][1]["annotations"]["runbook_url"] == "https://runbooks.example.com/api"


def test_cli_prints_the_rules_on_stdout_and_exits_0_when_none_is_skipped(tmp_path, slo_folder):
    done = run("slo", "rules", "--slo", str(slo_folder / "api.yaml"), "--slo", str(slo_folder / "latency.yaml"))
    assert done.returncode == 0, done.stderr
    groups = yaml.safe_load(done.stdout)["groups"]
    assert [g["name"] for g in groups] == [
        "slo:api:availability:sli-recordings",
        "slo:api:availability:alerts",
        "slo:api:latency:sli-recordings",
        "slo:api:latency:alerts",
    ]
    assert 'http_request_duration_seconds_bucket{le="0.3", job="api"}[5m]' in groups[2]["rules"][0]["expr"]
    assert run("slo", "rules").returncode == 2  # neither --slo nor --all
    (tmp_path / "bare.yaml").write_text("teams: {}\n")
    no_folder = run("--config", str(tmp_path / "bare.yaml"), "slo", "rules", "--all")
    assert no_folder.returncode == 2 and "no SLO folder configured" in no_folder.stderr
    bad_link = write_slo(tmp_path, "bad", ratio_slo("api", runbook_url="wiki/api"))
    refused = run("slo", "rules", "--slo", str(bad_link))
    assert refused.returncode == 2 and "runbook_url" in refused.stderr
    assert (
        run("slo", "rules", "--slo", str(slo_folder / "api.yaml"), "--slo", str(slo_folder / "api.yaml")).returncode
        == 2
    )


# --- promtool test rules: the alerts fire on a burn and not within budget ---------------------------------

CLEAN, BURN, PER_MIN = 2 * 1440, 120, 2000  # 2 days within budget (the 3d ticket stays quiet), then 2 h burning


def recorded(service: str, window: str) -> str:
    """The series an availability SLO's recording rule writes, as promtool's exp_samples name it."""
    return f'slo:sli_error:ratio_rate{window}{{service="{service}",slo="availability",window="{window}"}}'


def counter(per_minute: list[int]) -> str:
    values, running = [], 0
    for n in [0, *per_minute]:
        running += n
        values.append(str(running))
    return " ".join(values)


def test_promtool_unit_tests_page_on_a_burn_and_stay_silent_within_budget(tmp_path, slo_folder):
    config = config_from_mapping({"teams": {"api": "payments", "checkout": "shop"}}, environ={})
    down = load_slo(write_slo(slo_folder, "down", ratio_slo("down")))
    found = alert_rules(config, [load_slo(slo_folder / "api.yaml"), load_slo(slo_folder / "checkout.yaml"), down])
    (tmp_path / "rules.yaml").write_text(rules_yaml(found.groups))
    minutes = CLEAN + BURN
    api_errors = [0] * CLEAN + [40] * BURN  # 2% of 2000/min: a 20x burn of a 99.9% objective for 2 h
    checkout_errors = [1] * minutes  # 0.05%: half the budget
    series = [
        ('http_requests_total{job="api",code="200"}', [PER_MIN - e for e in api_errors]),
        ('http_requests_total{job="api",code="500"}', api_errors),
        ('http_requests_total{job="checkout",code="200"}', [PER_MIN - e for e in checkout_errors]),
        ('http_requests_total{job="checkout",code="503"}', checkout_errors),
    ]
    page = next(r for r in found.groups[1]["rules"] if r["labels"]["severity"] == "page")
    annotations = {
        "summary": "SLO api/availability is burning its error budget too fast",
        "description": page["annotations"]["description"]
        .replace("{{ $labels.window }}", "1h")
        .replace("{{ $value | humanizePercentage }}", "2%"),
    }
    labels = {"service": "api", "slo": "availability", "team": "payments", "window": "1h"}
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": counter(v)} for s, v in series],
                "alert_rule_test": [
                    {
                        "eval_time": f"{minutes}m",
                        "alertname": ALERT,
                        "exp_alerts": [{"exp_labels": labels | {"severity": "page"}, "exp_annotations": annotations}],
                    },
                    {"eval_time": f"{CLEAN}m", "alertname": ALERT, "exp_alerts": []},  # before the burn
                ],
                "promql_expr_test": [
                    {
                        "expr": 'slo:sli_error:ratio_rate1h{service="api"}',
                        "eval_time": f"{minutes}m",
                        "exp_samples": [
                            {
                                "labels": recorded("api", "1h"),
                                "value": 1 - (60 * PER_MIN - 60 * 40) / (60 * PER_MIN),
                            }
                        ],
                    },
                    {
                        "expr": 'slo:sli_error:ratio_rate3d{service="checkout"}',
                        "eval_time": f"{minutes}m",
                        "exp_samples": [
                            {
                                "labels": recorded("checkout", "3d"),
                                "value": 1 - (CLEAN * PER_MIN - CLEAN) / (CLEAN * PER_MIN),
                            }
                        ],
                    },
                ],
            },
            {  # every request failing: no good series at all counts as an error ratio of 1, not as no data
                "interval": "1m",
                "input_series": [{"series": 'http_requests_total{job="down",code="500"}', "values": "0+100x30"}],
                "promql_expr_test": [
                    {
                        "expr": 'slo:sli_error:ratio_rate5m{service="down"}',
                        "eval_time": "30m",
                        "exp_samples": [
                            {
                                "labels": recorded("down", "5m"),
                                "value": 1,
                            }
                        ],
                    }
                ],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout

    # the same unit test fails when a service within its budget is expected to page: the check can fail
    tests["tests"][0]["alert_rule_test"][1]["exp_alerts"] = [{"exp_labels": labels | {"severity": "page"}}]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    assert promtool("test", "rules", "tests.yaml", cwd=tmp_path).returncode != 0


# --- a real Prometheus: the rules load, and their expressions give the ratios of the backfilled counts -------


@pytest.fixture(scope="module")
def rule_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slo-rules")
    for name, body in (("api", ratio_slo("api")), ("checkout", ratio_slo("checkout")), ("latency", LATENCY)):
        write_slo(folder, name, body)
    found = alert_rules(
        config_from_mapping({"teams": {"api": "payments"}}, environ={}),
        [load_slo(folder / f"{n}.yaml") for n in ("api", "checkout", "latency")],
    )
    files = []
    for item in found.slos:
        files.append(folder / item["file"])
        files[-1].write_text(rules_yaml(item["groups"]))
    server = prometheus_server.start(folder, extra=prometheus_server.families, rule_files=files)
    try:
        yield server, found
    finally:
        server.stop()


def query(url: str, expr: str, at: float) -> list[dict]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr, "time": at}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def evaluated_rules(url: str, count: int = 27) -> tuple[list[dict], list[dict]]:
    """The server's rule groups and rules once every rule was evaluated at least once (or 20 s passed)."""
    deadline = time.monotonic() + 20
    while True:
        groups = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        settled = len(rules) == count and all(
            r.get("lastEvaluation", "").startswith("2") and r["health"] != "unknown" for r in rules
        )
        if settled or time.monotonic() > deadline:
            return groups, rules
        time.sleep(0.2)


def test_the_rules_load_and_the_recorded_expressions_give_the_counted_ratios(rule_server):
    server, found = rule_server
    groups, rules = evaluated_rules(server.url)
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in found.groups)
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    at = server.end.timestamp()
    by_name = {(s["service"], s["name"]): s["groups"][0]["rules"] for s in found.slos}
    for (service, name), bad in ((("api", "availability"), api_bad), (("api", "latency"), api_slow)):
        for record in by_name[(service, name)]:
            minutes = int(rule_windows()[by_name[(service, name)].index(record)].total_seconds() // 60)
            good, total = window_counts(bad, minutes)
            (value,) = query(server.url, record["expr"], at)
            assert float(value["value"][1]) == pytest.approx(1 - good / total, rel=1e-9), record["record"]


def test_the_live_server_pages_for_the_burning_service_only(rule_server):
    server, _ = rule_server
    # api: 0.8% errors for 6 h (8x a 99.9% budget) and 3% in the last 5 min: the 6x 6h/30m pair pages;
    # checkout: one error in ten minutes (0.1x) fires nothing.
    evaluated_rules(server.url)  # every alert rule evaluated: what fires has fired, what does not never will
    alerts = httpx.get(f"{server.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    shown = sorted(
        (a["labels"]["service"], a["labels"]["slo"], a["labels"]["severity"], a["labels"]["window"]) for a in alerts
    )
    assert shown == [("api", "availability", "page", "6h")]
    assert alerts[0]["state"] == "firing" and alerts[0]["labels"]["team"] == "payments"
