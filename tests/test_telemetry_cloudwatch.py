"""Canary telemetry from CloudWatch GetMetricData against moto's server mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest
from botocore.config import Config as BotoConfig

from analysis.canary import config_from_mapping, judge
from collector.telemetry import cloudwatch

CONFIG = config_from_mapping(
    {
        "metrics": [
            {
                "name": "latency",
                "direction": "increase",
                "tolerance": 0.1,
                "cloudwatch": {
                    "namespace": "Checkout",
                    "metric_name": "Latency",
                    "stat": "Average",
                    "dimensions": {"Service": "api"},
                },
            }
        ]
    }
)
END = datetime.now(UTC).replace(second=0, microsecond=0)
START = END - timedelta(hours=3)


@pytest.fixture
def client(moto_url):
    """CloudWatch on the session's moto server, reset for this test (conftest's moto_url)."""
    return boto3.client(
        "cloudwatch", region_name="us-east-1", endpoint_url=moto_url, config=BotoConfig(retries={"max_attempts": 1})
    )


def put(client, version: str, values: np.ndarray) -> None:
    for start in range(0, len(values), 500):
        client.put_metric_data(
            Namespace="Checkout",
            MetricData=[
                {
                    "MetricName": "Latency",
                    "Value": float(v),
                    "Timestamp": END - timedelta(minutes=i + 1),
                    "Dimensions": [{"Name": "Service", "Value": "api"}, {"Name": "Version", "Value": version}],
                }
                for i, v in enumerate(values[start : start + 500], start)
            ],
        )


def test_baseline_and_canary_by_dimension_and_verdict(client):
    rng = np.random.default_rng(8)
    base, slow = rng.normal(100, 5, 150), rng.normal(130, 5, 150)
    put(client, "v1", base)
    put(client, "v2", slow)
    t = cloudwatch.fetch(CONFIG, client, {"Version": "v1"}, {"Version": "v2"}, START, END)
    assert t.errors == {}
    b, c = t.samples["latency"]
    assert np.allclose(np.sort(b), np.sort(base)) and np.allclose(np.sort(c), np.sort(slow))
    assert t.queries["latency"]["canary"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "Service", "Value": "api"},
        {"Name": "Version", "Value": "v2"},
    ]
    assert judge(CONFIG, t.samples, t.errors).verdict == "fail"


def test_missing_dimension_and_unreachable_endpoint_give_nodata(client):
    put(client, "v1", np.full(20, 100.0))
    t = cloudwatch.fetch(CONFIG, client, {"Version": "v1"}, {"Version": "v9"}, START, END)
    assert "no datapoints for the canary dimensions" in t.errors["latency"]
    down = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1),
    )
    t = cloudwatch.fetch(CONFIG, down, {"Version": "v1"}, {"Version": "v2"}, START, END)
    assert "could not be read" in t.errors["latency"]
    assert judge(CONFIG, t.samples, t.errors).verdict == "nodata"


def test_pages_are_followed_with_next_token():
    """GetMetricData answers in pages: every page's values are kept and the token is sent back
    (botocore's Stubber checks each request and response against the CloudWatch model)."""
    from botocore.stub import Stubber

    stub_client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    queries = None
    with Stubber(stub_client) as stub:

        def page(values_b, values_c, token_in, token_out):
            expected = {
                "MetricDataQueries": queries,
                "StartTime": START,
                "EndTime": END,
                "ScanBy": "TimestampAscending",
            }
            if token_in:
                expected["NextToken"] = token_in
            answer = {
                "MetricDataResults": [
                    {"Id": "m0b", "Values": values_b, "Timestamps": [END] * len(values_b), "StatusCode": "PartialData"},
                    {"Id": "m0c", "Values": values_c, "Timestamps": [END] * len(values_c), "StatusCode": "PartialData"},
                ]
            }
            if token_out:
                answer["NextToken"] = token_out
            stub.add_response("get_metric_data", answer, expected)

        queries = [
            cloudwatch._query("m0b", CONFIG.metrics[0].cloudwatch, {"Version": "v1"}, 60),
            cloudwatch._query("m0c", CONFIG.metrics[0].cloudwatch, {"Version": "v2"}, 60),
        ]
        page([1.0, 2.0], [5.0], None, "page-2")
        page([3.0], [6.0, 7.0], "page-2", "page-3")
        page([], [8.0], "page-3", None)
        t = cloudwatch.fetch(CONFIG, stub_client, {"Version": "v1"}, {"Version": "v2"}, START, END)
        stub.assert_no_pending_responses()
    b, c = t.samples["latency"]
    assert b.tolist() == [1.0, 2.0, 3.0] and c.tolist() == [5.0, 6.0, 7.0, 8.0]


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_MAX_ATTEMPTS": "1",
}


def canary_config(tmp_path):
    import yaml

    path = tmp_path / "canary.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "metrics": [
                    {
                        "name": "latency",
                        "direction": "increase",
                        "tolerance": 0.1,
                        "cloudwatch": {
                            "namespace": "Checkout",
                            "metric_name": "Latency",
                            "stat": "Average",
                            "dimensions": {"Service": "api"},
                        },
                    }
                ]
            }
        )
    )
    return str(path)


def test_canary_run_from_cloudwatch_through_the_cli(client, moto_url, tmp_path, store_url, monkeypatch, gatewatch):
    import json

    rng = np.random.default_rng(9)
    put(client, "v1", rng.normal(100, 5, 120))
    put(client, "v2", rng.normal(101, 5, 120))
    put(client, "v3", rng.normal(140, 5, 120))
    config = canary_config(tmp_path)
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": moto_url}

    def run(canary: str, *extra: str, environ=env):
        res = gatewatch(
            "--db",
            store_url,
            "canary",
            "run",
            "--config",
            config,
            "--cloudwatch",
            "--baseline",
            'Version="v1"',
            "--canary",
            canary,
            "--start",
            "3h",
            "--json",
            *extra,
            env=environ,
        )
        return res, (json.loads(res.stdout) if res.stdout.strip() else None)

    res, out = run('Version="v3"')
    assert res.returncode == 1, res.stderr
    assert out["verdict"] == "fail" and out["metrics"][0]["canary"]["n"] == 120
    res, out = run('Version="v2"', "--step", "5m")  # five-minute averages of 120 minutes: 24 or 25 per side
    assert res.returncode == 0, res.stderr
    assert out["verdict"] == "pass" and out["metrics"][0]["baseline"]["n"] in (24, 25)
    shown = gatewatch("--db", store_url, "canary", "show", out["id"], "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["source"] == "cloudwatch"

    closed = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    res, out = run('Version="v2"', environ=closed)
    assert res.returncode == 3 and out["verdict"] == "nodata"
    assert "CloudWatch could not be read" in json.dumps(out)

    for extra, named in (
        (("--canary", 'Version=~"v.*"'), "--canary"),
        (("--step", "45s"), "--step"),
        (("--prometheus", "http://127.0.0.1:9090"), "--prometheus"),
    ):
        res = gatewatch(
            "--db",
            store_url,
            "canary",
            "run",
            "--config",
            config,
            "--cloudwatch",
            "--baseline",
            'Version="v1"',
            "--canary",
            'Version="v2"',
            "--start",
            "3h",
            *extra,
            env=env,
        )
        assert res.returncode == 2 and named in res.stderr and "Traceback" not in res.stderr, res.stderr
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # the suite's conftest sets one
    no_region = {k: v for k, v in env.items() if k != "AWS_REGION"} | {"AWS_CONFIG_FILE": "/nonexistent"}
    res, _ = run('Version="v2"', environ=no_region)
    assert res.returncode == 2 and "--region" in res.stderr and "AWS_REGION" in res.stderr, res.stderr


def test_gate_canary_check_reads_cloudwatch(client, moto_url, tmp_path, store_url, gatewatch):
    import json

    import yaml

    rng = np.random.default_rng(10)
    put(client, "v1", rng.normal(100, 5, 60))
    put(client, "v2", rng.normal(100.5, 5, 60))
    put(client, "v3", rng.normal(150, 5, 60))
    canary_config(tmp_path)
    gate = tmp_path / "gate.yaml"
    gate.write_text(
        yaml.safe_dump(
            {
                "name": "checkout-prod",
                "checks": [
                    {
                        "canary": {
                            "config": "canary.yaml",
                            "cloudwatch": {
                                "baseline": 'Version="v1"',
                                "canary": 'Version="v3"',
                                "window": "2h",
                                "region": "us-east-1",
                            },
                        },
                        "on_fail": "rollback",
                    }
                ],
            }
        )
    )
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": moto_url}
    res = gatewatch("--db", store_url, "gate", "check", "--policy", str(gate), "--json", env=env)
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    assert out["decision"] == "rollback" and out["checks"][0]["evidence"]["canary_verdict"] == "fail"
    res = gatewatch(
        "--db", store_url, "gate", "check", "--policy", str(gate), "--json", "--canary", 'Version="v2"', env=env
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["decision"] == "promote"
    res = gatewatch(
        "--db",
        store_url,
        "gate",
        "check",
        "--policy",
        str(gate),
        "--json",
        "--key",
        "outage",
        env={**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
    )
    out = json.loads(res.stdout)
    assert res.returncode == 3 and out["decision"] == "hold"
    assert "could not be read" in out["checks"][0]["evidence"]["unavailable"][0]
