"""Bad or missing evidence never passes a canary nor promotes a gate: bad proportion rows, confidence
that the samples cannot give, critical metrics without data, stale SLI data, and answers of a
Prometheus-compatible server that are not what was asked."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import special

from analysis.canary import config_from_mapping, judge, samples_from_frame
from analysis.canary.judge import valid_counts
from analysis.canary.stats import max_coverage
from analysis.slo import frame_freshness
from collector.telemetry import prometheus
from collector.telemetry.sli import load_slo, slo_status
from gatewatch.errors import ConfigError, SourceUnavailable

RNG = np.random.default_rng(5)


# --- proportions ---------------------------------------------------------------------------------


def test_bad_proportion_rows_are_dropped_with_the_reason_never_a_nan_rate():
    rows = np.array([[1, 100], [np.nan, 100], [5, 3], [-1, 10], [2, np.inf], [3, 100]])
    clean, why = valid_counts(rows)
    assert clean.tolist() == [[1, 100], [3, 100]]
    assert "2 with a missing or non-finite good or total (first: row 2" in why
    assert "1 with a negative count (first: row 4" in why and "1 with good above total (first: row 3" in why
    config = config_from_mapping({"metrics": [{"name": "e", "test": "proportion", "min_samples": 50}]})
    verdict = judge(config, {"e": (rows, np.array([[2, 100], [4, 100]]))})
    metric = verdict.metrics[0]
    assert metric.classification == "pass" and "baseline dropped" in metric.reason
    assert all(np.isfinite(v) for v in (metric.shift, *metric.ci))


@pytest.mark.parametrize("rows", [[[np.nan, 100]], [[-1, 100]], [[200, 100]], [[np.nan, np.nan]]])
def test_a_side_left_without_valid_rows_is_nodata(rows):
    config = config_from_mapping({"metrics": [{"name": "e", "test": "proportion", "critical": True}]})
    verdict = judge(config, {"e": (np.array(rows, dtype=float), np.array([[1.0, 100.0]]))})
    assert verdict.verdict == "nodata" and verdict.metrics[0].classification == "nodata"
    assert "dropped" in verdict.metrics[0].reason


def test_a_csv_with_a_missing_good_value_is_nodata_and_a_non_number_names_its_line(tmp_path, gatewatch):
    (tmp_path / "canary.yaml").write_text(
        yaml.safe_dump({"metrics": [{"name": "errors", "test": "proportion", "critical": True, "min_samples": 100}]})
    )
    csv = "metric,group,good,total\nerrors,baseline,,100\nerrors,canary,1,100\n"
    (tmp_path / "s.csv").write_text(csv)
    res = gatewatch(
        "canary",
        "judge",
        "--config",
        str(tmp_path / "canary.yaml"),
        "--data",
        str(tmp_path / "s.csv"),
        "--no-store",
        "--json",
    )
    assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr
    assert json.loads(res.stdout)["verdict"] == "nodata"
    (tmp_path / "s.csv").write_text(csv.replace(",,100", ",abc,100"))
    res = gatewatch(
        "canary", "judge", "--config", str(tmp_path / "canary.yaml"), "--data", str(tmp_path / "s.csv"), "--no-store"
    )
    assert res.returncode == 2 and "line 2" in res.stderr and "good 'abc' is not a number" in res.stderr
    with pytest.raises(ConfigError, match="line 3"):
        samples_from_frame(
            pd.DataFrame({"metric": ["m", "m"], "group": ["baseline", "canary"], "value": ["1.5", "fast"]})
        )


# --- confidence the samples cannot give ------------------------------------------------------------


@pytest.mark.parametrize("n, m", [(3, 3), (4, 4), (5, 5), (2, 9)])
def test_the_widest_interval_covers_one_minus_two_over_the_arrangements(n, m):
    assert max_coverage(n, m, np.array([])) == pytest.approx(1 - 2 / special.comb(n + m, n))


def test_confidence_out_of_reach_is_nodata_never_a_narrower_interval():
    config = config_from_mapping({"confidence": 0.98, "metrics": [{"name": "m", "min_samples": 3}]})
    verdict = judge(config, {"m": (np.array([1.0, 2.0, 3.0]), np.array([9.0, 9.5, 9.7]))})  # looks much worse
    metric = verdict.metrics[0]
    assert metric.classification == "nodata" and verdict.verdict == "nodata"
    assert "cannot give a 98% interval (the widest covers 90.0%)" in metric.reason
    at_90 = config_from_mapping({"confidence": 0.9, "metrics": [{"name": "m", "min_samples": 3}]})
    assert judge(at_90, {"m": (np.array([1.0, 2.0, 3.0]), np.array([9.0, 9.5, 9.7]))}).verdict == "fail"


# --- critical and missing metrics ------------------------------------------------------------------


def _same(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    return RNG.normal(100, 5, n), RNG.normal(100, 5, n)


def test_a_critical_metric_without_data_makes_the_canary_nodata():
    config = config_from_mapping(
        {"metrics": [{"name": "latency", "critical": True}, {"name": "cpu"}, {"name": "memory"}]}
    )
    verdict = judge(config, {"cpu": _same(), "memory": _same()})
    assert verdict.verdict == "nodata" and verdict.score is None
    assert verdict.reasons[0] == "critical metric without data: latency"
    # on_nodata: fail says missing data counts as failed: the critical metric fails the canary
    strict = config_from_mapping(
        {"metrics": [{"name": "latency", "critical": True, "on_nodata": "fail"}, {"name": "cpu"}, {"name": "memory"}]}
    )
    assert judge(strict, {"cpu": _same(), "memory": _same()}).verdict == "fail"


@pytest.mark.parametrize("present, expected", [(1, "nodata"), (2, "nodata"), (3, "pass")])
def test_half_or_more_of_the_metrics_without_data_is_nodata(present, expected):
    names = ["a", "b", "c", "d"]
    config = config_from_mapping({"metrics": [{"name": n} for n in names]})
    verdict = judge(config, {n: _same() for n in names[:present]})
    assert verdict.verdict == expected


# --- stale SLI data --------------------------------------------------------------------------------

AT = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def sli_frame(end: datetime, hours: float = 48, step: timedelta = timedelta(minutes=5), bad: int = 0) -> pd.DataFrame:
    stamps = pd.date_range(end=end, periods=int(timedelta(hours=hours) / step), freq=step)
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "good": 1000, "total": 1000})
    frame.loc[frame.index[-12:], "good"] = 1000 - bad  # the last hour's errors
    return frame


def test_freshness_of_counts_per_interval():
    newest, stale, gaps = frame_freshness(sli_frame(AT), AT)
    assert newest == AT and stale is None and gaps is None
    newest, stale, _ = frame_freshness(sli_frame(AT - timedelta(hours=6, minutes=31)), AT)
    assert newest == AT - timedelta(hours=6, minutes=31)
    assert stale == "stale: newest point 6h31m ago (at most 10m allowed)"
    # hourly data: two steps (2 h) is the bound, but a 5-minute window cannot be judged
    _, stale, gaps = frame_freshness(sli_frame(AT - timedelta(minutes=50), step=timedelta(hours=1)), AT)
    assert stale is None and gaps.startswith("gaps: no data over 100% of the last 5m")
    holes = sli_frame(AT)
    holes = holes[~pd.to_datetime(holes["timestamp"]).between(AT - timedelta(minutes=25), AT - timedelta(minutes=5))]
    assert frame_freshness(holes, AT)[2] == "gaps: no data over 83% of the last 30m (at most half allowed)"


def _slo(tmp_path, frame: pd.DataFrame, **extra) -> str:
    frame.to_csv(tmp_path / "sli.csv", index=False)
    path = tmp_path / "slo.yaml"
    path.write_text(yaml.safe_dump({"service": "api", "objective": 99.9, "sli": {"data": "sli.csv"}, **extra}))
    return str(path)


def test_a_burn_rate_gate_holds_on_stale_data_that_would_have_promoted(tmp_path, store_url, gatewatch):
    """SLI data 6.5 hours old: the short windows hold no events, so no pair fires; it must not promote."""
    slo = _slo(tmp_path, sli_frame(datetime.now(UTC) - timedelta(hours=6, minutes=30)))
    (tmp_path / "gate.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "burn",
                "checks": [
                    {"burn_rate": {"slo": "slo.yaml"}, "on_fail": "rollback"},
                    {"error_budget": {"slo": "slo.yaml", "min_remaining": 0.1}, "on_fail": "hold"},
                ],
            }
        )
    )
    res = gatewatch("--db", store_url, "gate", "check", "--policy", str(tmp_path / "gate.yaml"), "--json")
    decision = json.loads(res.stdout)
    assert res.returncode == 3 and decision["decision"] == "hold"
    assert [c["status"] for c in decision["checks"]] == ["nodata", "nodata"]
    assert all("stale: newest point 6h30m ago" in c["reason"] for c in decision["checks"])
    status = gatewatch("slo", "status", "--slo", slo)
    assert status.returncode == 3 and "status: stale: newest point 6h30m ago" in status.stdout
    # the SLO may allow older data
    loose = _slo(tmp_path, sli_frame(datetime.now(UTC) - timedelta(hours=6, minutes=30)), max_staleness="7h")
    assert slo_status(load_slo(loose), datetime.now(UTC)).stale is None


# --- answers of a Prometheus-compatible server that are not what was asked --------------------------


class Stub:
    """An HTTP server answering every API call with one fixed body (status 200 unless given)."""

    def __init__(self, body: object, status: int = 200):
        stub = self
        self.queries: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                stub.queries.append(parse_qs(urlparse(self.path).query).get("query", [""])[0])
                payload = body(stub.queries[-1]) if callable(body) else body
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ok(kind: str, result: object) -> dict:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


LATENCY = {"metrics": [{"name": "latency", "query": 'latency{job="api", {scope}}', "critical": True}]}
ANSWERS = [
    (ok("scalar", [1714800000, "1"]), "query returned a scalar; expected a range vector"),
    (ok("vector", [{"metric": {}, "value": [1714800000, "1"]}]), "query returned an instant vector; expected a range"),
    (ok("matrix", [{"metric": {}, "histograms": [[1714800000, {"count": "3"}]]}]), "native histogram samples"),
    (
        {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"},
        "answered HTTP 200 with status 'error': bad_data parse error at char 3",
    ),
    (b"<html>proxy login</html>", "answered HTTP 200 with a body that is not JSON"),
]


@pytest.mark.parametrize("body, reason", ANSWERS)
def test_an_answer_of_the_wrong_shape_is_nodata_in_plain_words(body, reason):
    stub = Stub(body)
    try:
        config = config_from_mapping(LATENCY)
        telemetry = prometheus.fetch(config, stub.url, 'v="1"', 'v="2"', AT - timedelta(minutes=30), AT)
        assert reason in telemetry.errors["latency"] and "Error" not in telemetry.errors["latency"]
        verdict = judge(config, telemetry.samples, telemetry.errors)
        assert verdict.verdict == "nodata"
    finally:
        stub.close()


def test_an_slo_read_from_a_server_answering_a_scalar_is_unavailable_with_the_reason(tmp_path):
    stub = Stub(ok("scalar", [1714800000, "1"]))
    try:
        path = tmp_path / "slo.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "service": "api",
                    "objective": 99.9,
                    "prometheus": {"url": stub.url},
                    "sli": {"ratio": {"good": 'ok_total{job="api"}', "total": "all_total"}},
                }
            )
        )
        with pytest.raises(SourceUnavailable, match="query returned a scalar; expected an instant vector"):
            slo_status(load_slo(path), AT)
    finally:
        stub.close()


def test_a_minute_without_an_error_series_counts_zero_errors_and_no_series_at_all_is_nodata():
    stamps = [1714800000 + 60 * i for i in range(20)]

    def answer(query: str) -> dict:
        if 'code="500"' in query:  # errors only in the baseline's first five minutes
            values = [[t, "2"] for t in stamps[:5]] if 'v="1"' in query else []
            return ok("matrix", [{"metric": {}, "values": values}] if values else [])
        return ok("matrix", [{"metric": {}, "values": [[t, "100"] for t in stamps]}])

    stub = Stub(answer)
    config = config_from_mapping(
        {
            "metrics": [
                {
                    "name": "errors",
                    "test": "proportion",
                    "min_samples": 10,
                    "good_query": 'sum(rate(req{code="500", {scope}}[1m]))',
                    "total_query": "sum(rate(req{ {scope} }[1m]))",
                }
            ]
        }
    )
    try:
        telemetry = prometheus.fetch(config, stub.url, 'v="1"', 'v="2"', AT - timedelta(minutes=30), AT)
        baseline, canary = telemetry.samples["errors"]
        assert baseline.shape == (20, 2) and canary.shape == (20, 2)  # no timestamp dropped
        assert baseline[:, 0].sum() == 10 and canary[:, 0].sum() == 0
        none = prometheus.fetch(config, stub.url, 'v="3"', 'v="2"', AT - timedelta(minutes=30), AT)
        assert "errors" not in none.samples and "or vector(0)" in none.errors["errors"]
    finally:
        stub.close()
