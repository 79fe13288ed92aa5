"""SLO files (schema, CSV and Prometheus SLIs) and `gatewatch slo status`, against a real Prometheus
whose history is backfilled with promtool from deterministic per-minute counters (below)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.slo import SloError, slo_from_mapping
from collector.telemetry.sli import budget_history, burn_rate_history, load_slo, load_slos, slo_status
from gatewatch.errors import ConfigError, SourceUnavailable
from tests import prometheus_server
from tests.conftest import run_in_process as run
from tests.prometheus_server import MINUTES, PER_MINUTE, api_bad, window_counts

# --- the history: tests.prometheus_server's (`families`), served by conftest's `prometheus` ------------


def minute_frame(bad, end: datetime) -> pd.DataFrame:
    """The same counts as a CSV SLI frame: one row per minute, stamped with the minute's end."""
    return pd.DataFrame(
        {
            "timestamp": [(end - timedelta(minutes=i)).isoformat() for i in range(MINUTES)],
            "good": [PER_MINUTE - bad(i) for i in range(MINUTES)],
            "total": PER_MINUTE,
        }
    )


@pytest.fixture
def server(prometheus):
    """This module's Prometheus: the session's server (conftest), read at server.end or other fixed times."""
    return prometheus


def write_slo(folder: Path, name: str, body: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def api_availability(url: str) -> dict:
    return {
        "service": "api",
        "objective": 99.9,
        "window": "28d",
        "prometheus": {"url": url},
        "sli": {
            "ratio": {"good": 'http_requests_total{job="api",code!~"5.."}', "total": 'http_requests_total{job="api"}'}
        },
    }


def api_latency(url: str, selector: str = 'job="api"') -> dict:
    return {
        "service": "api",
        "name": "latency",
        "objective": 99,
        "window": {"duration": "28d", "rolling": True},
        "prometheus": {"url": url},
        "sli": {"threshold": {"metric": "http_request_duration_seconds", "le": "0.3", "selector": selector}},
    }


# --- the schema ------------------------------------------------------------------------------------------

BASE = {"service": "api", "objective": 99.9, "window": "28d", "sli": {"data": "sli.csv"}}
RATIO = {"ratio": {"good": 'http_requests_total{code!~"5.."}', "total": "http_requests_total"}}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"service": None}, "service: required"),
        ({"objective": None}, "objective: expected a number"),
        ({"objective": 100}, "objective: expected a target between 0 and 100%"),
        ({"objective": "high"}, "objective: expected a number"),
        ({"window": "28x"}, "window: expected a duration"),
        ({"window": {"duration": "1M", "rolling": True}}, "window.duration: expected a duration"),
        ({"window": {"duration": "28d", "rolling": False}}, "window.rolling: only rolling windows"),
        ({"sli": None}, "sli: required"),
        ({"sli": {"data": "a.csv", **RATIO}}, "sli: expected exactly one of data, ratio, threshold"),
        ({"sli": {"ratio": {"total": "x_total"}}, "prometheus": {"url": "http://p:9090"}}, "sli.ratio.good: required"),
        (
            {
                "sli": {"ratio": {"good": "x_total", "total": "sum(rate(x_total[5m]))"}},
                "prometheus": {"url": "http://p:9090"},
            },
            "sli.ratio.total: expected a counter selector",
        ),
        (
            {"sli": {"threshold": {"metric": "lat", "selector": 'job="a"'}}, "prometheus": {"url": "http://p:9090"}},
            "sli.threshold.le: required",
        ),
        (
            {"sli": {"threshold": {"metric": "lat{job='a'}", "le": "0.3"}}, "prometheus": {"url": "http://p:9090"}},
            "sli.threshold.metric: expected a histogram's name",
        ),
        (
            {"sli": {"threshold": {"metric": "lat", "le": "fast"}}, "prometheus": {"url": "http://p:9090"}},
            "sli.threshold.le: expected a bucket bound",
        ),
        ({"sli": RATIO}, "prometheus.url: required for a ratio SLI"),
        ({"sli": RATIO, "prometheus": {"url": "prometheus:9090"}}, "prometheus.url: expected an http"),
        ({"sli": RATIO, "prometheus": {"url": "http://p:9090", "timeout": -1}}, "prometheus.timeout"),
        ({"prometheus": {"url": "http://p:9090"}}, "prometheus: only used by ratio and threshold"),
        ({"owner": "me"}, "unknown key(s) ['owner']"),
    ],
)
def test_schema_errors_name_the_field(change, field):
    raw = {**BASE, **change}
    raw = {k: v for k, v in raw.items() if v is not None or k == "objective"}
    if change.get("objective", 0) is None:
        raw["objective"] = None
    with pytest.raises(SloError) as err:
        slo_from_mapping(raw, Path("/slos"), default_name="availability")
    assert field in str(err.value)


def test_schema_defaults_and_equivalent_forms(tmp_path):
    a = slo_from_mapping({**BASE, "objective": 0.999}, tmp_path, default_name="availability")
    b = slo_from_mapping({**BASE, "window": {"duration": "4w", "isRolling": True}}, tmp_path, "availability")
    assert a.objective == pytest.approx(b.objective) == pytest.approx(0.999)
    assert a.window == b.window == timedelta(days=28) and a.name == "availability"
    assert a.sli.data.path == tmp_path / "sli.csv"
    threshold = slo_from_mapping(api_latency("http://p:9090/"), tmp_path)
    assert (
        threshold.sli.threshold.metric == "http_request_duration_seconds"
        and threshold.prometheus.url == "http://p:9090"
    )


def test_load_slo_names_file_and_field_and_refuses_promql_injection(tmp_path):
    path = write_slo(tmp_path, "bad", api_latency("http://p:9090", 'job="api"} or vector(1) #'))
    with pytest.raises(ConfigError) as err:
        load_slo(path)
    assert str(path) in str(err.value) and "sli.threshold.selector" in str(err.value)
    path.write_text("service: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_slo(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_slo(tmp_path / "missing.yaml")
    path.unlink()
    write_slo(tmp_path, "x", {"service": "api", "sli": {"data": "a.csv"}})
    with pytest.raises(ConfigError, match=r"x\.yaml: objective: required"):
        load_slos(tmp_path)


def test_load_slos_reads_every_file_of_a_folder(tmp_path):
    write_slo(tmp_path, "b-latency", api_latency("http://p:9090"))
    (tmp_path / "a.yml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "notes.txt").write_text("not an SLO")
    specs = load_slos(tmp_path)
    assert [(s.name, s.sli.kind) for s in specs] == [("a", "data"), ("latency", "threshold")]


# --- figures from a real Prometheus -----------------------------------------------------------------------


def test_ratio_sli_budget_and_burn_rates_equal_the_hand_worked_counts(server, tmp_path):
    s = slo_status(load_slo(write_slo(tmp_path, "availability", api_availability(server.url))), server.end)
    # 4380 minutes x 1000 requests; errors 5 x 30 + 355 x 8 = 2990; 99.9% allows 4380 of them.
    assert (s.good, s.total) == (4_377_010, 4_380_000)
    assert s.sli == pytest.approx(4_377_010 / 4_380_000)
    assert s.budget_total == pytest.approx(4380) and s.budget_used == pytest.approx(2990)
    assert s.budget_remaining == pytest.approx(1 - 2990 / 4380)
    # bad / (minutes x 1000) / 0.001: 1h (150 + 55 x 8) / 60 = 9.83x, 5m 30x; 6h 2990 / 360, 30m 350 / 30;
    # 1d 2990 / 1440, 2h 1070 / 120; 3d 2990 / 4320, 6h again.
    rates = [(a.long_burn_rate, a.short_burn_rate) for a in s.alerts]
    assert rates == [
        pytest.approx(r)
        for r in [(590 / 60, 30), (2990 / 360, 350 / 30), (2990 / 1440, 1070 / 120), (2990 / 4320, 2990 / 360)]
    ]
    for alert, (long_m, short_m) in zip(s.alerts, [(60, 5), (360, 30), (1440, 120), (4320, 360)]):
        for rate, minutes in ((alert.long_burn_rate, long_m), (alert.short_burn_rate, short_m)):
            good, total = window_counts(api_bad, minutes)
            assert rate == pytest.approx((total - good) / total / 0.001)
    # only the 6x pair has both windows above its threshold; the others exceed in their short window only
    assert [a.firing for a in s.alerts] == [False, True, False, False]
    assert all(a.short_burn_rate > a.threshold > a.long_burn_rate for a in s.alerts if not a.firing)


def test_csv_and_prometheus_slis_go_through_the_same_computation(server, tmp_path):
    minute_frame(api_bad, server.end).to_csv(tmp_path / "sli.csv", index=False)
    from_csv = slo_status(load_slo(write_slo(tmp_path, "csv", {**BASE, "service": "api"})), server.end)
    from_prometheus = slo_status(load_slo(write_slo(tmp_path, "prom", api_availability(server.url))), server.end)
    a, b = from_csv.to_dict(), from_prometheus.to_dict()
    assert a.keys() == b.keys()
    for key in ("good", "total", "sli", "objective", "window", "at"):
        assert a[key] == pytest.approx(b[key]) if isinstance(a[key], float) else a[key] == b[key]
    assert a["error_budget"] == pytest.approx(b["error_budget"])
    assert [(x["long_burn_rate"], x["short_burn_rate"], x["firing"]) for x in a["burn_rates"]] == [
        (pytest.approx(y["long_burn_rate"]), pytest.approx(y["short_burn_rate"]), y["firing"]) for y in b["burn_rates"]
    ]


def test_latency_threshold_sli_counts_the_bucket_against_the_count(server, tmp_path):
    s = slo_status(load_slo(write_slo(tmp_path, "latency", api_latency(server.url))), server.end)
    # slower than 0.3 s: 60 x 50 + 4320 x 5 = 24,600 of 4,380,000; 99% allows 43,800. job="batch" (all slow)
    # is left out by the selector.
    assert (s.good, s.total) == (4_380_000 - 24_600, 4_380_000)
    assert s.budget_remaining == pytest.approx(1 - 24_600 / 43_800)
    assert s.alerts[0].long_burn_rate == pytest.approx(5.0) and s.alerts[0].short_burn_rate == pytest.approx(5.0)
    assert s.alerts[3].long_burn_rate == pytest.approx((3000 + 4260 * 5) / 4_320_000 / 0.01)
    assert s.firing == []
    everything = slo_status(
        load_slo(write_slo(tmp_path, "all", api_latency(server.url, 'job=~"api|batch"'))), server.end
    )
    assert everything.total == 2 * 4_380_000 and everything.good == 4_380_000 - 24_600


def test_budget_history_is_the_burn_down_of_the_window_sums(server, tmp_path):
    start = server.end - timedelta(minutes=47 * 30)
    spec = load_slo(write_slo(tmp_path, "availability", api_availability(server.url)))
    history = budget_history(spec, start, server.end, points=48)
    assert list(history.columns) == ["at", "sli", "budget_remaining"] and len(history) == 48
    assert history["at"].iloc[0] == pd.Timestamp(start) and history["at"].iloc[-1] == pd.Timestamp(server.end)
    expected = []
    for k in range(48):
        good, total = window_counts(api_bad, MINUTES, offset=(47 - k) * 30)  # the 28d window holds all before
        expected.append((good / total, 1 - (total - good) / (0.001 * total)))
    assert np.allclose(history[["sli", "budget_remaining"]].to_numpy(), np.array(expected))
    assert history["budget_remaining"].iloc[-1] == pytest.approx(slo_status(spec, server.end).budget_remaining)
    minute_frame(api_bad, server.end).to_csv(tmp_path / "sli.csv", index=False)
    from_csv = budget_history(load_slo(write_slo(tmp_path, "csv", BASE)), start, server.end, points=48)
    assert np.allclose(from_csv[["sli", "budget_remaining"]].to_numpy(), np.array(expected))


def test_burn_rate_history_is_the_burn_rate_of_each_window_ending_then(server, tmp_path):
    """The 1h and 6h burn rates every 30 minutes over the last 12 hours, from a real Prometheus (one range
    query each of good and total per window) and from the same counts as a CSV file, equal the counts
    worked out by hand: api fails 8/min for 6 hours and 30/min in the last 5 minutes."""
    start = server.end - timedelta(hours=12)
    spec = load_slo(write_slo(tmp_path, "availability", api_availability(server.url)))
    history = burn_rate_history(spec, start, server.end, points=25)
    assert set(history["window"]) == {"1h", "6h"} and len(history) == 50
    expected = {}
    for label, minutes in (("1h", 60), ("6h", 360)):
        rates = []
        for k in range(25):
            good, total = window_counts(api_bad, minutes, offset=(24 - k) * 30)
            rates.append((total - good) / total / 0.001)
        expected[label] = rates
    # now: 1h holds 5 x 30 + 55 x 8 = 590 bad of 60,000 (9.83x); 6h holds 150 + 355 x 8 = 2,990 of 360,000.
    assert expected["1h"][-1] == pytest.approx(590 / 60_000 / 0.001)
    assert expected["6h"][-1] == pytest.approx(2_990 / 360_000 / 0.001)
    for label, threshold in (("1h", 14.4), ("6h", 6.0)):
        rows = history[history["window"] == label]
        assert list(rows["at"]) == [pd.Timestamp(start + timedelta(minutes=30 * k)) for k in range(25)]
        assert np.allclose(rows["burn_rate"].to_numpy(), expected[label])
        assert set(rows["threshold"]) == {threshold}
    status = slo_status(spec, server.end)
    assert history["burn_rate"].iloc[24] == pytest.approx(status.alerts[0].long_burn_rate)
    minute_frame(api_bad, server.end).to_csv(tmp_path / "sli.csv", index=False)
    from_csv = burn_rate_history(load_slo(write_slo(tmp_path, "csv", BASE)), start, server.end, points=25)
    assert np.allclose(from_csv["burn_rate"].to_numpy(), history["burn_rate"].to_numpy())


def test_unreachable_server_and_query_errors_raise_source_unavailable(server, tmp_path):
    closed = f"http://127.0.0.1:{prometheus_server.free_port()}"
    spec = load_slo(
        write_slo(tmp_path, "down", {**api_availability(closed), "prometheus": {"url": closed, "timeout": 2}})
    )
    with pytest.raises(SourceUnavailable) as err:
        slo_status(spec, server.end)
    assert closed in str(err.value) and "ConnectionError" in str(err.value)
    with pytest.raises(SourceUnavailable, match=closed):
        budget_history(spec, server.end - timedelta(hours=1), server.end)
    broken = api_availability(server.url)
    broken["sli"]["ratio"]["good"] = "sum(increase(http_requests_total[{window}])) +"  # not valid PromQL
    with pytest.raises(SourceUnavailable) as err:
        slo_status(load_slo(write_slo(tmp_path, "broken", broken)), server.end)
    assert server.url in str(err.value) and "400" in str(err.value)


# --- gatewatch slo status ------------------------------------------------------------------------------


def test_slo_status_cli_json_and_exit_codes(server, tmp_path, gatewatch):
    path = write_slo(tmp_path, "availability", api_availability(server.url))
    res = gatewatch("slo", "status", "--slo", str(path), "--at", server.end.isoformat(), "--json")
    assert res.returncode == 1, res.stderr  # the 6x pair fires
    out = json.loads(res.stdout)
    assert (out["service"], out["name"], out["total"]) == ("api", "availability", 4_380_000)
    assert out["error_budget"]["remaining"] == pytest.approx(1 - 2990 / 4380)
    assert [(f["long_window"], f["short_window"], f["threshold"]) for f in out["firing"]] == [("6h", "30m", 6.0)]
    assert len(out["burn_rates"]) == 4 and out["burn_rates"][0]["short_burn_rate"] == pytest.approx(30)
    human = run("slo", "status", "--slo", str(path), "--at", server.end.isoformat())
    assert human.returncode == 1 and "FIRING" in human.stdout and "99.932%" in human.stdout
    assert "remaining 31.7%" in human.stdout and "BURN-RATE ALERT(S) FIRING" in human.stdout
    # seven hours earlier nothing had gone wrong yet: no errors anywhere in the windows
    calm = run("slo", "status", "--slo", str(path), "--at", (server.end - timedelta(hours=7)).isoformat(), "--json")
    assert calm.returncode == 0 and json.loads(calm.stdout)["firing"] == []
    assert json.loads(calm.stdout)["error_budget"]["used"] == 0
    healthy = write_slo(
        tmp_path,
        "checkout",
        {
            **api_availability(server.url),
            "service": "checkout",
            "sli": {
                "ratio": {
                    "good": 'http_requests_total{job="checkout",code!~"5.."}',
                    "total": 'http_requests_total{job="checkout"}',
                }
            },
        },
    )
    ok = run("slo", "status", "--slo", str(healthy), "--at", server.end.isoformat())
    assert ok.returncode == 0 and "status: OK" in ok.stdout


def test_slo_status_cli_exhausted_budget_outage_and_usage_errors(server, tmp_path, gatewatch):
    at = datetime.fromisoformat("2024-05-29T12:00:00+00:00")
    frame = pd.DataFrame(
        {"timestamp": [(at - timedelta(days=5, minutes=i)).isoformat() for i in range(60)], "good": 900, "total": 1000}
    )  # a bad hour five days ago: 6,000 bad events
    frame = pd.concat(
        [
            frame,
            pd.DataFrame(
                {
                    "timestamp": [(at - timedelta(days=d)).isoformat() for d in range(1, 5)],
                    "good": 1_000_000,
                    "total": 1_000_000,
                }
            ),
            # the SLI's recent intervals, quiet (no events): the data is fresh at `at`
            pd.DataFrame(
                {"timestamp": [(at - timedelta(minutes=5 * i)).isoformat() for i in range(72)], "good": 0, "total": 0}
            ),
        ]
    )
    frame.to_csv(tmp_path / "sli.csv", index=False)
    data = write_slo(tmp_path, "spent", BASE)
    later = run("slo", "status", "--slo", str(data), "--at", (at + timedelta(hours=6, minutes=31)).isoformat())
    assert later.returncode == 3 and "status: stale: newest point 6h31m ago" in later.stdout  # never "OK"
    res = run("slo", "status", "--slo", str(data), "--at", at.isoformat(), "--json")
    out = json.loads(res.stdout)
    # 4,060,000 events allow 4,060 bad; 6,000 were: exhausted, while no burn-rate pair fires
    assert res.returncode == 1 and out["firing"] == [] and out["error_budget"]["remaining"] < 0
    assert out["error_budget"]["remaining"] == pytest.approx(1 - 6000 / 4060)
    assert "ERROR BUDGET EXHAUSTED" in run("slo", "status", "--slo", str(data), "--at", at.isoformat()).stdout
    closed = f"http://127.0.0.1:{prometheus_server.free_port()}"
    down = gatewatch("slo", "status", "--slo", str(write_slo(tmp_path, "down", api_availability(closed))))
    assert down.returncode == 5 and closed in down.stderr and "Traceback" not in down.stderr
    missing_data = run(
        "slo", "status", "--slo", str(write_slo(tmp_path, "nodata", {**BASE, "sli": {"data": "absent.csv"}}))
    )
    assert missing_data.returncode == 5 and "absent.csv" in missing_data.stderr
    bad = write_slo(tmp_path, "bad", {**BASE, "objective": 100})
    res = run("slo", "status", "--slo", str(bad))
    assert res.returncode == 2 and "objective" in res.stderr and "Traceback" not in res.stderr
    res = run("slo", "status", "--slo", str(data), "--at", "yesterday")
    assert res.returncode == 2 and "--at" in res.stderr
    assert run("slo", "status").returncode == 2
    helped = run("slo", "status", "--help")
    assert helped.returncode == 0 and "Exit status" in helped.stdout and "14.4x" in helped.stdout
