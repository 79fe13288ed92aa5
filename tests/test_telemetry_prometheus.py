"""Canary telemetry from a real Prometheus server with backfilled history, and scope escaping."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from analysis.canary import config_from_mapping, judge
from collector.config import load_config
from collector.telemetry import prometheus
from collector.telemetry.scopes import parse_scope, render_query, render_scope
from gatewatch.errors import ConfigError
from tests import prometheus_server
from tests.prometheus_server import CANARY_CONFIG as CONFIG

STEP = timedelta(seconds=15)


@pytest.fixture
def server(prometheus):
    """This module's Prometheus: the session's server (conftest), read between server.start and server.end."""
    return prometheus


def test_scope_rendering_and_injection():
    assert render_scope('version="v2",region=~"eu-.*"') == 'version="v2", region=~"eu-.*"'
    assert render_scope({"version": 'v"1\\'}) == 'version="v\\"1\\\\"'
    assert parse_scope('a="x\\"y"') == [("a", "=", 'x"y')]
    assert render_query('up{job="api", {scope}}', 'version="v1"') == 'up{job="api", version="v1"}'
    for bad in ('version="v1"} or vector(1) #', "version=v1", 'version="v1" region="x"', "", '1abc="x"'):
        with pytest.raises(ConfigError):
            render_scope(bad)
    with pytest.raises(ConfigError, match="placeholder"):
        render_query("up", 'version="v1"')


def test_fetch_returns_the_values_written(server):
    config = config_from_mapping(CONFIG)
    t = prometheus.fetch(config, server.url, 'version="v1"', 'version="v3"', server.start, server.end, step=STEP)
    assert t.errors == {}
    baseline, canary = t.samples["latency"]
    assert len(baseline) == len(server.written["v1"]) == 480
    assert np.allclose(np.sort(baseline), np.sort(np.round(server.written["v1"], 6)))
    assert np.allclose(np.sort(canary), np.sort(np.round(server.written["v3"], 6)))
    good_total = t.samples["errors"][1]
    assert good_total.shape[1] == 2 and np.allclose(good_total[:, 0] / good_total[:, 1], 0.04, atol=1e-9)
    assert t.queries["latency"]['query@version="v3"'] == 'canary_latency_seconds{job="api", version="v3"}'


def test_regressed_canary_fails_and_healthy_one_passes(server):
    config = config_from_mapping(CONFIG)
    bad = prometheus.fetch(config, server.url, 'version="v1"', 'version="v3"', server.start, server.end, step=STEP)
    verdict = judge(config, bad.samples, bad.errors)
    assert verdict.verdict == "fail" and {m.name: m.classification for m in verdict.metrics} == {
        "latency": "high",
        "errors": "high",
    }
    good = prometheus.fetch(config, server.url, 'version="v1"', 'version="v2"', server.start, server.end, step=STEP)
    assert judge(config, good.samples, good.errors).verdict == "pass"


def test_missing_series_and_stopped_server_give_nodata_never_pass(server):
    config = config_from_mapping(CONFIG)
    t = prometheus.fetch(config, server.url, 'version="v1"', 'version="v9"', server.start, server.end)
    assert "no series for canary scope" in t.errors["latency"]
    v = judge(config, t.samples, t.errors)
    assert v.verdict == "nodata" and v.metrics[0].classification == "nodata"
    closed = prometheus.fetch(
        config,
        f"http://127.0.0.1:{prometheus_server.free_port()}",
        'version="v1"',
        'version="v2"',
        server.start,
        server.end,
        timeout=2,
    )
    assert set(closed.errors) == {"latency", "errors"} and "could not be read" in closed.errors["latency"]
    assert judge(config, closed.samples, closed.errors).verdict == "nodata"


def test_canary_run_cli_against_prometheus(server, tmp_path, gatewatch):
    import yaml

    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(CONFIG))
    url = f"sqlite:///{tmp_path / 's.db'}"
    common = [
        "--db",
        url,
        "canary",
        "run",
        "--config",
        str(tmp_path / "canary.yaml"),
        "--start",
        server.start.isoformat(),
        "--end",
        server.end.isoformat(),
        "--step",
        "15s",
        "--baseline",
        'version="v1"',
        "--json",
    ]
    args = [*common, "--prometheus", server.url]
    bad = gatewatch(*args, "--canary", 'version="v3"')
    assert bad.returncode == 1, bad.stderr
    assert json.loads(bad.stdout)["verdict"] == "fail"
    good = gatewatch(*args, "--canary", 'version="v2"')
    assert good.returncode == 0 and json.loads(good.stdout)["verdict"] == "pass"
    down = gatewatch(
        *common, "--prometheus", f"http://127.0.0.1:{prometheus_server.free_port()}", "--canary", 'version="v2"'
    )
    assert down.returncode == 3 and json.loads(down.stdout)["verdict"] == "nodata"
    injected = gatewatch(*args, "--canary", 'version="v2"} or vector(1) #')
    assert injected.returncode == 2 and "expected label matchers" in injected.stderr


class AuthProxy:
    """A reverse proxy on 127.0.0.1 in front of the real server that demands credentials (401 without)."""

    def __init__(self, upstream: str, expected: str):
        import threading
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.seen: list[str | None] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                given = self.headers.get("Authorization")
                proxy.seen.append(given)
                if given != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                with urllib.request.urlopen(upstream + self.path, timeout=10) as answer:
                    body = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    "env, header",
    [
        ({"GATEWATCH_PROMETHEUS_TOKEN": "s3cret-token"}, "Bearer s3cret-token"),
        ({"GATEWATCH_PROMETHEUS_USER": "gate", "GATEWATCH_PROMETHEUS_PASSWORD": "pa55"}, "Basic Z2F0ZTpwYTU1"),
    ],
)
def test_credentials_from_the_environment_reach_an_authenticating_proxy(server, monkeypatch, env, header):
    """Every Prometheus read (canary runs, gate checks, SLOs) sends the configured credentials."""
    proxy = AuthProxy(server.url, header)
    try:
        config = config_from_mapping(CONFIG)
        refused = prometheus.fetch(
            config, proxy.url, 'version="v1"', 'version="v3"', server.start, server.end, step=STEP
        )
        assert not refused.samples and all("401" in e for e in refused.errors.values())
        assert refused.unavailable == {"latency", "errors"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        auth = load_config().prometheus  # the configuration loader reads the credentials from the environment
        allowed = prometheus.fetch(
            config, proxy.url, 'version="v1"', 'version="v3"', server.start, server.end, step=STEP, auth=auth
        )
        assert not allowed.errors and judge(config, allowed.samples, allowed.errors).verdict == "fail"
        assert proxy.seen[-1] == header
    finally:
        proxy.close()
