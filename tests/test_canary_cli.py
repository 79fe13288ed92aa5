"""`gatewatch canary judge` end to end, and stored runs that can be audited and re-judged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from analysis.canary import config_from_mapping, judge
from collector.canary_runs import list_runs, load_run, save_run

CONFIG = """
confidence: 0.98
metrics:
  - name: latency_p99
    direction: increase
    tolerance: 0.10
    critical: true
    group: latency
  - name: success
    direction: decrease
    group: errors
"""


def write_samples(path, latency_shift: float, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for group, shift in (("baseline", 1.0), ("canary", latency_shift)):
        rows += [{"metric": "latency_p99", "group": group, "value": v} for v in rng.normal(200 * shift, 10, 120)]
        rows += [{"metric": "success", "group": group, "value": v} for v in rng.normal(0.99, 0.002, 120)]
    pd.DataFrame(rows).to_csv(path, index=False)


def test_judge_from_csv_exit_codes_json_and_record(tmp_path, store_url, gatewatch):
    (tmp_path / "canary.yaml").write_text(CONFIG)
    write_samples(tmp_path / "bad.csv", 1.3)
    write_samples(tmp_path / "good.csv", 1.0)
    bad = gatewatch(
        "--db",
        store_url,
        "canary",
        "judge",
        "--config",
        str(tmp_path / "canary.yaml"),
        "--data",
        str(tmp_path / "bad.csv"),
        "--deployment",
        "dep-7",
        "--json",
    )
    assert bad.returncode == 1, bad.stderr
    out = json.loads(bad.stdout)
    assert out["verdict"] == "fail" and out["reasons"][0] == "critical metric failed: latency_p99"
    latency = next(m for m in out["metrics"] if m["name"] == "latency_p99")
    assert latency["classification"] == "high" and latency["passed"] is False and latency["baseline"]["n"] == 120
    assert 0.25 < latency["relative_shift"] < 0.35 and latency["ci"][0] < latency["shift"] < latency["ci"][1]
    good = gatewatch(
        "--db",
        store_url,
        "canary",
        "judge",
        "--config",
        str(tmp_path / "canary.yaml"),
        "--data",
        str(tmp_path / "good.csv"),
    )
    assert good.returncode == 0 and good.stdout.strip().splitlines()[-2].startswith("verdict: PASS")
    shown = gatewatch("--db", store_url, "canary", "show", out["id"], "--json")
    assert json.loads(shown.stdout)["verdict"] == "fail"


def test_judge_usage_errors_exit_2(tmp_path, gatewatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    (tmp_path / "bad.yaml").write_text("metrics:\n  - name: x\n    direction: sideways\n")
    write_samples(tmp_path / "s.csv", 1.0)
    res = gatewatch(
        "--db", url, "canary", "judge", "--config", str(tmp_path / "bad.yaml"), "--data", str(tmp_path / "s.csv")
    )
    assert res.returncode == 2 and "metrics[0].direction" in res.stderr and "Traceback" not in res.stderr
    res = gatewatch("--db", url, "canary", "judge", "--config", str(tmp_path / "missing.yaml"), "--data", "x.csv")
    assert res.returncode == 2


def test_stored_runs_round_trip_and_can_be_re_judged(engine):
    config = config_from_mapping({"metrics": [{"name": "m", "tolerance": 0.10}]})
    rng = np.random.default_rng(3)
    samples = {"m": (rng.normal(100, 5, 300), rng.normal(115, 5, 300))}
    verdict = judge(config, samples)
    run_id = save_run(engine, config, verdict, samples, "csv", deployment_id="d1")
    run = load_run(engine, run_id)
    assert run.verdict == "fail" and run.deployment_id == "d1" and run.config == config
    assert np.array_equal(run.samples["m"][0], samples["m"][0]) and np.array_equal(run.samples["m"][1], samples["m"][1])
    assert run.result["metrics"][0]["reason"] == verdict.metrics[0].reason
    looser = config_from_mapping({**config.to_dict(), "metrics": [{"name": "m", "tolerance": 0.25}]})
    assert judge(looser, run.samples).verdict == "pass"  # re-judged with a wider tolerance
    runs = list_runs(engine)
    assert list(runs["id"]) == [run_id] and runs.loc[0, "verdict"] == "fail"
