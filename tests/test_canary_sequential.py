"""Sequential canary analysis: the confidence sequences against independent computations and their
time-uniform coverage, the decisions at each look, the sequence kept in the store and continued by
another process, and every gate surface holding while a sequence continues."""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from scipy import integrate, stats

from analysis.canary import config_from_mapping
from analysis.canary.sequential import (
    SequenceState,
    autocorrelation,
    inflation,
    log_mixture,
    quantile_bounds,
    rate_bounds,
    sequential_look,
    thinning_lag,
)
from collector.canary_sequences import list_looks, load_sequence, record_look
from collector.config import config_from_mapping as gatewatch_config
from collector.timeutil import utcnow
from gatewatch import api
from gatewatch.errors import CanaryConfigError

SEQUENTIAL = {"min_duration": "10m", "max_duration": "30m", "look_interval": "1m"}


def canary_config(tolerance: float = 0.1, **sequential):
    return config_from_mapping(
        {
            "metrics": [{"name": "latency", "tolerance": tolerance, "critical": True}],
            "confidence": 0.98,
            "mode": "sequential",
            "sequential": SEQUENTIAL | sequential,
        }
    )


def ar1(rng, n: int, rho: float) -> np.ndarray:
    noise = rng.normal(size=n)
    out = np.empty(n)
    out[0] = noise[0]
    scale = math.sqrt(1 - rho**2)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + scale * noise[i]
    return out


# --- the confidence sequences ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "t", "p0", "side"),
    [(3, 10, 0.5, "above"), (9, 10, 0.5, "above"), (40, 200, 0.3, "below"), (1, 50, 0.1, "below")],
)
def test_the_mixture_equals_numerical_integration_of_the_likelihood_ratio(s, t, p0, side):
    a, b = 10 * p0, 10 * (1 - p0)
    lo, hi = (p0, 1.0) if side == "above" else (0.0, p0)
    prior = stats.beta(a, b)
    ratio = lambda q: (q / p0) ** s * ((1 - q) / (1 - p0)) ** (t - s) * prior.pdf(q)  # noqa: E731
    expected = integrate.quad(ratio, lo, hi, points=[p0])[0] / (prior.cdf(hi) - prior.cdf(lo))
    assert log_mixture(s, t, p0, side) == pytest.approx(math.log(expected), rel=1e-6, abs=1e-9)


def test_quantile_bounds_cover_the_median_at_every_sample_size_at_once():
    rng = np.random.default_rng(7)
    alpha, runs, misses = 0.01, 300, 0
    for _ in range(runs):
        x = rng.standard_normal(400)
        low, high = -math.inf, math.inf
        for n in range(10, 401, 10):
            lo, hi = quantile_bounds(x[:n], 0.5, alpha)
            low, high = max(low, lo), min(high, hi)
            if low > 0 or high < 0:  # the true median is 0
                misses += 1
                break
    # Two one-sided bounds at alpha each: at most 2 alpha over all sample sizes (plus 3 s.e. of noise).
    assert misses / runs <= 2 * alpha + 3 * math.sqrt(2 * alpha * (1 - 2 * alpha) / runs)


def test_quantile_bounds_are_order_statistics_that_narrow_and_stay_valid():
    x = np.random.default_rng(1).standard_normal(2000)
    wide = quantile_bounds(x[:50], 0.5, 0.01)
    narrow = quantile_bounds(x, 0.5, 0.01)
    assert wide[0] in x[:50] and wide[1] in x[:50]
    assert wide[0] < narrow[0] < np.median(x) < narrow[1] < wide[1]
    assert quantile_bounds(x[:3], 0.5, 0.01) == (-math.inf, math.inf)  # too few to say anything


def test_rate_bounds_sit_where_the_mixture_crosses_one_over_alpha_and_cover_the_rate():
    alpha = 0.01
    lower, upper = rate_bounds(30, 1000, alpha)
    assert lower < 0.03 < upper
    assert log_mixture(30, 1000, lower, "above") == pytest.approx(math.log(1 / alpha), abs=1e-6)
    assert log_mixture(30, 1000, upper, "below") == pytest.approx(math.log(1 / alpha), abs=1e-6)
    rng = np.random.default_rng(3)
    runs, misses = 300, 0
    for _ in range(runs):
        draws = rng.random(5000) < 0.02
        low, high = 0.0, 1.0
        for t in range(250, 5001, 250):
            lo, hi = rate_bounds(float(draws[:t].sum()), t, alpha)
            low, high = max(low, lo), min(high, hi)
            if low > 0.02 or high < 0.02:
                misses += 1
                break
    assert misses / runs <= 2 * alpha + 3 * math.sqrt(2 * alpha / runs)


def test_inflation_matches_the_variance_of_sign_counts_of_a_simulated_ar1():
    rng = np.random.default_rng(5)
    sums = [np.sign(ar1(rng, 2000, 0.8)).sum() for _ in range(300)]
    simulated = float(np.var(sums)) / 2000
    assert inflation(0.8) == pytest.approx(simulated, rel=0.2)
    assert inflation(0.0) == 1.0
    assert autocorrelation(ar1(rng, 5000, 0.8)) == pytest.approx(0.8, abs=0.05)
    assert autocorrelation(rng.standard_normal(5000)) == 0.0  # within noise: independent
    assert thinning_lag(0.0) == 1 and thinning_lag(0.8) > 5
    assert inflation(0.8 ** thinning_lag(0.8)) <= 1.25 < inflation(0.8 ** (thinning_lag(0.8) - 1))


# --- decisions at each look --------------------------------------------------------------------------


def run_sequence(config, baseline, canary, per_minute=10, looks=30):
    state, history = None, []
    for look in range(1, looks + 1):
        k = look * per_minute
        verdict, state = sequential_look(
            config, {"latency": (baseline[:k], canary[:k])}, timedelta(minutes=look), state
        )
        history.append(verdict.verdict)
        if verdict.verdict in ("pass", "fail"):
            break
    return history


def test_a_large_regression_fails_early_and_a_better_canary_never_passes_before_min_duration():
    rng = np.random.default_rng(11)
    baseline = 100 * np.exp(0.3 * rng.standard_normal(300))
    regressed = run_sequence(canary_config(), baseline, 160 * np.exp(0.3 * rng.standard_normal(300)))
    assert regressed[-1] == "fail" and len(regressed) < 10
    better = run_sequence(canary_config(), baseline, 60 * np.exp(0.3 * rng.standard_normal(300)))
    assert better[:9] == ["continue"] * 9  # a pass is never given before min_duration, whatever the data
    assert better[9] == "pass"


def test_a_decided_sequence_keeps_its_decision_and_max_duration_hands_over_to_the_fixed_judge():
    rng = np.random.default_rng(2)
    config = canary_config(min_duration="2m", max_duration="3m")
    samples = {"latency": (rng.normal(100, 30, 30), rng.normal(100, 30, 30))}
    verdict, state = sequential_look(config, samples, timedelta(minutes=3), SequenceState(looks=2))
    assert verdict.sequence["final"] and "max_duration" in verdict.reasons[0]
    assert verdict.verdict in ("pass", "fail") and state.decision == verdict.verdict
    again, _ = sequential_look(config, {}, timedelta(minutes=4), state)
    assert again.verdict == verdict.verdict and "decided at look 3" in again.reasons[0]


def test_a_critical_metric_without_data_is_nodata_and_too_few_samples_continue():
    config = canary_config()
    verdict, _ = sequential_look(config, {}, timedelta(minutes=2), None, {"latency": "connection refused"})
    assert verdict.verdict == "nodata" and "connection refused" in " ".join(verdict.reasons)
    verdict, state = sequential_look(config, {"latency": (np.ones(3), np.ones(3))}, timedelta(minutes=1))
    assert verdict.verdict == "continue" and "waiting" in verdict.metrics[0].reason and state.looks == 1


def test_aa_canaries_fail_at_most_alpha_over_thirty_looks_independent_and_autocorrelated():
    rng = np.random.default_rng(2026)
    runs = 150
    for rho, tolerance, bound in ((0.0, 0.1, 0.02), (0.8, 0.0, 0.04)):
        fails = 0
        for _ in range(runs):
            baseline, canary = (ar1(rng, 300, rho) if rho else rng.standard_normal(300) for _ in range(2))
            history = run_sequence(canary_config(tolerance), 100 * np.exp(0.3 * baseline), 100 * np.exp(0.3 * canary))
            fails += history[-1] == "fail"
        assert fails / runs <= bound + 3 * math.sqrt(bound * (1 - bound) / runs), (rho, fails)


def test_the_shift_sequence_covers_the_hodges_lehmann_shift_at_every_look():
    """The median shift comes from one sequence over paired differences (i-th canary less i-th baseline
    sample): its running bounds cover the median of Y - X, the Hodges-Lehmann shift parameter (here, of
    skewed data, not the difference of the medians), at all 30 looks at once in at least 1 - alpha/2 of runs."""
    rng = np.random.default_rng(7)
    draws = rng.standard_normal((2, 2_000_000))
    theta = float(np.median(120 * np.exp(0.3 * draws[1]) - 100 * np.exp(0.3 * draws[0])))
    assert abs(theta - 20) > 0.3  # not the medians' difference, 20 (Monte Carlo s.e. of theta about 0.04)
    config = canary_config(2.0, min_duration="40m", max_duration="41m")  # a band nothing reaches: no decision
    runs, missed = 200, 0
    for _ in range(runs):
        baseline, canary = 100 * np.exp(0.3 * rng.standard_normal(300)), 120 * np.exp(0.3 * rng.standard_normal(300))
        state = None
        for look in range(1, 31):
            verdict, state = sequential_look(
                config, {"latency": (baseline[: 10 * look], canary[: 10 * look])}, timedelta(minutes=look), state
            )
            assert verdict.verdict == "continue"
            lo, hi = verdict.metrics[0].ci
            if not lo <= theta <= hi:
                missed += 1
                break
    assert missed / runs <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / runs), missed


def test_one_sequence_for_the_shift_is_narrower_than_the_two_sides_combined_and_pairs_in_arrival_order():
    rng = np.random.default_rng(8)
    baseline, canary = 100 * np.exp(0.3 * rng.standard_normal(300)), 120 * np.exp(0.3 * rng.standard_normal(300))
    verdict, _ = sequential_look(canary_config(0.0), {"latency": (baseline, canary)}, timedelta(minutes=1))
    lo, hi = verdict.metrics[0].ci
    assert lo <= float(np.median(canary - baseline)) <= hi
    # The former construction at the same level: each side's median bounds, combined (their widths add).
    (b_lo, b_hi), (c_lo, c_hi) = quantile_bounds(baseline, 0.5, 0.005), quantile_bounds(canary, 0.5, 0.005)
    assert hi - lo < 0.8 * ((c_hi - b_lo) - (c_lo - b_hi))
    # More baseline than canary samples: the surplus waits for its pair.
    verdict, _ = sequential_look(canary_config(0.0), {"latency": (baseline[:150], canary[:100])}, timedelta(minutes=1))
    metric = verdict.metrics[0]
    assert metric.sequence["pairs"] == 100 and metric.baseline["n"] == 150
    assert metric.shift == pytest.approx(float(np.median(canary[:100] - baseline[:100])))


# --- the stored sequence -------------------------------------------------------------------------------


def write_samples(path, shift: float, n: int, before: int = 0, seed: int = 4) -> None:
    """n samples a side, as a source returns everything since a sequence started: the canary's first
    `before` samples as the baseline's, the rest `shift` times them (the same draws at every look)."""
    rng = np.random.default_rng(seed)
    baseline, canary = (100 * np.exp(0.3 * rng.standard_normal(1000)) for _ in range(2))
    canary = np.r_[canary[:before], shift * canary[before:]]
    rows = [{"metric": "latency", "group": "baseline", "value": v} for v in baseline[:n]]
    rows += [{"metric": "latency", "group": "canary", "value": v} for v in canary[:n]]
    pd.DataFrame(rows).to_csv(path, index=False)


def test_looks_are_stored_reused_within_the_interval_and_a_changed_config_is_refused(engine, tmp_path):
    config, data = gatewatch_config({}, environ={}), tmp_path / "samples.csv"
    canary, t0 = canary_config(), utcnow()
    source = api.CsvSamples(data)
    write_samples(data, 1.0, 20)
    first = api.run_canary(engine, config, canary, source, sequence="r-1", at=t0)
    assert first.verdict.verdict == "continue" and first.run_id
    again = api.run_canary(engine, config, canary, source, sequence="r-1", at=t0 + timedelta(seconds=20))
    assert again.run_id == first.run_id and "look 1" in again.verdict.reasons[0]  # within the look interval
    write_samples(data, 1.7, 150, before=20)
    second = api.run_canary(engine, config, canary, source, sequence="r-1", at=t0 + timedelta(minutes=2))
    assert second.verdict.verdict == "fail" and second.verdict.sequence["look"] == 2
    stored = load_sequence(engine, "r-1")
    assert stored.looks == 2 and stored.decision == "fail" and stored.started_at == t0 - timedelta(minutes=1)
    looks = list_looks(engine, "r-1")
    assert [(look.look, look.verdict) for look in looks] == [(1, "continue"), (2, "fail")]
    assert looks[1].elapsed_s == 180.0
    later = api.run_canary(engine, config, canary, source, sequence="r-1", at=t0 + timedelta(minutes=5))
    assert later.verdict.verdict == "fail" and later.run_id == second.run_id  # decided: final
    with pytest.raises(CanaryConfigError, match="another canary config"):
        api.run_canary(engine, config, canary_config(0.2), source, sequence="r-1", at=t0 + timedelta(minutes=9))
    with pytest.raises(CanaryConfigError, match="sequence key"):
        api.run_canary(engine, config, canary, source)
    drawn = api.canary_sequence(engine, "r-1")
    assert drawn["decision"] == "fail" and list(drawn["frame"]["look"]) == [1, 2]
    assert drawn["frame"]["low"].iloc[1] > drawn["frame"]["fail_band"].iloc[1]  # the interval above the band


def test_of_two_processes_taking_the_same_look_one_records_it(engine, tmp_path):
    config, data = gatewatch_config({}, environ={}), tmp_path / "samples.csv"
    write_samples(data, 1.0, 20)
    t0 = utcnow()
    api.run_canary(engine, config, canary_config(), api.CsvSamples(data), sequence="r-2", at=t0)
    stale = load_sequence(engine, "r-2")
    api.run_canary(engine, config, canary_config(), api.CsvSamples(data), sequence="r-2", at=t0 + timedelta(minutes=2))
    verdict, state = sequential_look(stale.config, {}, timedelta(minutes=3), stale.state)
    late = type(stale)(**{**stale.__dict__, "looks": state.looks, "state": state, "updated_at": t0})
    recorded, run_id = record_look(engine, "r-2", stale, late, verdict, {}, (stale.started_at, t0))
    assert (recorded, run_id) == (False, None)
    assert [look.look for look in list_looks(engine, "r-2")] == [1, 2]


@pytest.mark.postgres
def test_a_sequence_is_continued_by_another_process_on_postgresql(tmp_path, gatewatch):
    from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_store_url

    if not POSTGRES_URL:
        pytest.skip("GATEWATCH_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_store_url()
    try:
        env = {"GATEWATCH_DB": url}
        assert gatewatch("db", "upgrade", env=env).returncode == 0
        (tmp_path / "canary.yaml").write_text(
            yaml.safe_dump(
                {
                    "metrics": [{"name": "latency", "tolerance": 0.1, "critical": True}],
                    "mode": "sequential",
                    "sequential": {"min_duration": "1s", "max_duration": "1h", "look_interval": "1s"},
                }
            )
        )
        data = tmp_path / "samples.csv"
        args = ("canary", "judge", "--config", str(tmp_path / "canary.yaml"), "--data", str(data))
        write_samples(data, 1.0, 12)
        first = gatewatch(*args, "--sequence", "deploy-9", "--json", env=env)
        assert first.returncode == 3, first.stderr
        assert json.loads(first.stdout)["verdict"] == "continue" and json.loads(first.stdout)["sequence"]["look"] == 1
        time.sleep(1.2)
        write_samples(data, 1.8, 150, before=12)
        second = gatewatch(*args, "--sequence", "deploy-9", env=env)
        assert second.returncode == 1, second.stdout + second.stderr
        assert "look 2 at" in second.stdout and "verdict: FAIL" in second.stdout
        engine = api.open_store(url)
        looks = list_looks(engine, "deploy-9")
        assert [look.verdict for look in looks] == ["continue", "fail"]
        first_bounds = looks[0].result["metrics"][0]["sequence"]["baseline"]
        second_bounds = looks[1].result["metrics"][0]["sequence"]["baseline"]
        assert second_bounds[0] >= first_bounds[0] and second_bounds[1] <= first_bounds[1]  # continued, not restarted
        engine.dispose()
    finally:
        from collector.db import dispose_engines

        dispose_engines()
        _drop_schema(schema)


# --- the gate's surfaces -----------------------------------------------------------------------------


TOKEN = "sequential-gate-token"


@pytest.fixture
def sequential_gate(tmp_path):
    folder = tmp_path / "gates"
    folder.mkdir()
    write_samples(tmp_path / "samples.csv", 0.7, 200)  # a better canary: it would pass a fixed judge
    (tmp_path / "canary.yaml").write_text(
        yaml.safe_dump(
            {
                "metrics": [{"name": "latency", "tolerance": 0.1, "critical": True}],
                "mode": "sequential",
                "sequential": SEQUENTIAL,
            }
        )
    )
    policy = {
        "name": "checkout-prod",
        "checks": [{"canary": {"config": "../canary.yaml", "data": "../samples.csv"}, "on_fail": "rollback"}],
    }
    (folder / "checkout-prod.yaml").write_text(yaml.safe_dump(policy))
    return folder


def test_every_gate_surface_holds_while_the_sequence_continues(
    engine, store_url, sequential_gate, gatewatch, monkeypatch
):
    from collector.webhooks import create_app
    from gates.service import load_policies
    from gates.views import build_router

    config = gatewatch_config({"gates": {"token": TOKEN}}, environ={})
    app = create_app(engine, config, routers=[build_router(engine, config, load_policies(sequential_gate))])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        body = client.post("/v1/gates/checkout-prod/evaluate", json={"key": "http-1"}, headers=auth).json()
        assert body["decision"] == "hold"
        assert body["checks"][0]["status"] == "continue" and body["checks"][0]["effect"] == "hold"
        flagger = client.post(
            "/v1/flagger/checkout-prod/confirm-promotion",
            json={
                "name": "podinfo",
                "namespace": "test",
                "phase": "Progressing",
                "checksum": "c1",
                "metadata": {"token": TOKEN},
            },
        )
        assert flagger.status_code == 409
        argo = client.get("/v1/argo/checkout-prod", params={"key": "argo-1"}, headers=auth).json()
        assert argo["decision"] == "hold" and not argo["promote"] and not argo["rollback"]  # inconclusive
    assert load_sequence(engine, "http-1/canary").looks == 1

    cli = gatewatch(
        "gate", "check", "--policy", str(sequential_gate / "checkout-prod.yaml"), "--key", "cli-1", "--json",
        env={"GATEWATCH_DB": store_url},
    )  # fmt: skip
    assert cli.returncode == 3, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["checks"][0]["status"] == "continue"

    monkeypatch.setenv("GATEWATCH_DB", store_url)
    monkeypatch.setenv("GATEWATCH_GATE_POLICIES", str(sequential_gate))
    monkeypatch.delenv("GATEWATCH_CONFIG", raising=False)
    from botocore.stub import ANY

    from tests.test_gate_lambda import Pipeline, job_event

    pipeline, event = Pipeline(), job_event({"gate": "checkout-prod", "max_wait": "2h"})
    pipeline.expect("put_job_success_result", {"jobId": event["CodePipeline.job"]["id"], "continuationToken": ANY})
    answer = pipeline.call(event)
    assert answer["reported"] == "continuation" and answer["decision"] == "hold"


def test_the_gate_continues_one_sequence_across_attempts_until_it_decides(engine, sequential_gate, tmp_path):
    config = gatewatch_config({}, environ={})
    policy = api.load_policy(sequential_gate / "checkout-prod.yaml")
    request = api.GateRequest(deployment_id="d-7")
    t0 = utcnow()
    first = api.evaluate_gate(engine, config, policy, request, now=t0)
    assert first.decision == "hold" and first.checks[0]["status"] == "continue"
    assert "min_duration" in first.checks[0]["reason"]
    write_samples(tmp_path / "samples.csv", 1.8, 200, before=20)
    second = api.evaluate_gate(engine, config, policy, request, now=t0 + timedelta(minutes=2))
    assert second.decision == "rollback" and second.attempt == 2
    assert second.evidence["canary_sequence"] == "checkout-prod:d-7/canary" and second.evidence["canary_look"] == 2


def test_the_canary_page_draws_a_sequence_look_by_look(engine, store_url, tmp_path, monkeypatch, fresh_dashboard):
    from streamlit.testing.v1 import AppTest

    from tests.test_dashboard import APP

    config, data, t0 = gatewatch_config({}, environ={}), tmp_path / "samples.csv", utcnow() - timedelta(minutes=10)
    for look, n in enumerate((20, 40, 150), start=1):
        write_samples(data, 1.7, n, before=20)
        api.run_canary(
            engine, config, canary_config(), api.CsvSamples(data), sequence="r-9", at=t0 + timedelta(minutes=look)
        )
    monkeypatch.setenv("GATEWATCH_DB", store_url)
    monkeypatch.chdir(tmp_path)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/canary.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(h.value.startswith("Sequence: the anytime-valid interval") for h in at.subheader)
    assert any("Sequence `r-9`: 3 look(s), fail" in c.value for c in at.caption)
    looks = at.dataframe[-1].value
    assert list(looks["look"]) == [1, 2, 3] and list(looks["verdict"]) == ["continue", "continue", "fail"]


def test_a_policy_check_can_make_a_fixed_canary_config_sequential(engine, sequential_gate, tmp_path):
    fixed = yaml.safe_load((tmp_path / "canary.yaml").read_text()) | {"mode": "fixed"}
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(fixed))
    config = gatewatch_config({}, environ={})
    policy = yaml.safe_load((sequential_gate / "checkout-prod.yaml").read_text())
    (sequential_gate / "checkout-prod.yaml").write_text(yaml.safe_dump(policy))
    assert api.evaluate_gate(engine, config, api.load_policy(sequential_gate / "checkout-prod.yaml")).decision == (
        "promote"
    )  # a better canary, judged once
    policy["checks"][0]["canary"]["mode"] = "sequential"
    (sequential_gate / "checkout-prod.yaml").write_text(yaml.safe_dump(policy))
    held = api.evaluate_gate(
        engine, config, api.load_policy(sequential_gate / "checkout-prod.yaml"), api.GateRequest(key="k-1")
    )
    assert held.decision == "hold" and held.checks[0]["status"] == "continue"
    no_key = api.evaluate_gate(engine, config, api.load_policy(sequential_gate / "checkout-prod.yaml"))
    assert no_key.decision == "hold" and "stable key" in no_key.checks[0]["reason"]
