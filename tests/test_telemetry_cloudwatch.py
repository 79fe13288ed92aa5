"""Canary telemetry from CloudWatch GetMetricData against moto's server mode."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import httpx
import numpy as np
import pytest
from botocore.config import Config as BotoConfig
from moto.server import ThreadedMotoServer

from analysis.canary import config_from_mapping, judge
from collector.telemetry import cloudwatch

CONFIG = config_from_mapping({"metrics": [
    {"name": "latency", "direction": "increase", "tolerance": 0.1,
     "cloudwatch": {"namespace": "Checkout", "metric_name": "Latency", "stat": "Average",
                    "dimensions": {"Service": "api"}}}]})
END = datetime.now(timezone.utc).replace(second=0, microsecond=0)
START = END - timedelta(hours=3)


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def client(moto_url):
    httpx.post(f"{moto_url}/moto-api/reset")
    return boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_url,
                        config=BotoConfig(retries={"max_attempts": 1}))


def put(client, version: str, values: np.ndarray) -> None:
    for start in range(0, len(values), 500):
        client.put_metric_data(Namespace="Checkout", MetricData=[
            {"MetricName": "Latency", "Value": float(v), "Timestamp": END - timedelta(minutes=i + 1),
             "Dimensions": [{"Name": "Service", "Value": "api"}, {"Name": "Version", "Value": version}]}
            for i, v in enumerate(values[start:start + 500], start)])


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
        {"Name": "Service", "Value": "api"}, {"Name": "Version", "Value": "v2"}]
    assert judge(CONFIG, t.samples, t.errors).verdict == "fail"


def test_missing_dimension_and_unreachable_endpoint_give_nodata(client):
    put(client, "v1", np.full(20, 100.0))
    t = cloudwatch.fetch(CONFIG, client, {"Version": "v1"}, {"Version": "v9"}, START, END)
    assert "no datapoints for the canary dimensions" in t.errors["latency"]
    down = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                        config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1))
    t = cloudwatch.fetch(CONFIG, down, {"Version": "v1"}, {"Version": "v2"}, START, END)
    assert "could not be read" in t.errors["latency"]
    assert judge(CONFIG, t.samples, t.errors).verdict == "nodata"
