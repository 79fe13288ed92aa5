"""Gate policies: schema errors that name the field, and how check results combine."""

from __future__ import annotations

import pytest

from gates.policy import CheckResult, PolicyError, decide, effect_of, policy_from_mapping

POLICY = {
    "name": "checkout-prod",
    "on_missing_data": "hold",
    "checks": [
        {"canary": {"config": "canary.yaml", "data": "samples.csv"}, "on_fail": "rollback"},
        {"error_budget": {"slo": "slo.yaml", "min_remaining": 0.25}, "on_fail": "hold"},
        {"burn_rate": {"slo": "slo.yaml"}, "on_fail": "rollback"},
        {"deploy_window": {"timezone": "Europe/Berlin", "allow": ["Mon-Thu 09:00-17:00"]}, "on_fail": "hold"},
        {"dora": {"metric": "change_failure_rate", "max": 0.3}, "on_fail": "hold", "on_missing_data": "ignore"},
    ],
}


def test_the_issue_example_parses():
    policy = policy_from_mapping(POLICY)
    assert [c.name for c in policy.checks] == ["canary", "error_budget", "burn_rate", "deploy_window", "dora"]
    assert [c.on_fail for c in policy.checks] == ["rollback", "hold", "rollback", "hold", "hold"]
    assert policy.checks[4].on_missing_data == "ignore" and policy.checks[0].on_missing_data == "hold"
    assert policy.checks[3].window.timezone == "Europe/Berlin"


@pytest.mark.parametrize("status", ["pass", "fail", "nodata"])
@pytest.mark.parametrize("on_fail", ["rollback", "hold"])
@pytest.mark.parametrize("missing", ["hold", "ignore", "rollback"])
def test_policy_matrix(status, on_fail, missing):
    policy = policy_from_mapping(
        {"name": "g", "on_missing_data": missing, "checks": [{"burn_rate": {"slo": "s.yaml"}, "on_fail": on_fail}]}
    )
    (check,) = policy.checks
    effect = effect_of(check, status)
    decision, reasons = decide([CheckResult(check.name, status, effect, "because")])
    expected = {
        "pass": "promote",
        "fail": on_fail,
        "nodata": {"hold": "hold", "ignore": "promote", "rollback": "rollback"}[missing],
    }[status]
    assert decision == expected
    assert reasons[0] == ("burn_rate: because" if expected != "promote" else reasons[0])


def test_rollback_beats_hold_beats_promote():
    results = [
        CheckResult("a", "pass", "none", "ok"),
        CheckResult("b", "fail", "hold", "outside window"),
        CheckResult("c", "fail", "rollback", "canary failed"),
    ]
    assert decide(results) == ("rollback", ["c: canary failed"])
    assert decide(results[:2]) == ("hold", ["b: outside window"])
    assert decide(results[:1])[0] == "promote"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p.pop("name"), "name: required"),
        (lambda p: p.update(on_missing_data="promote"), "on_missing_data: expected one of hold, ignore, rollback"),
        (
            lambda p: p["checks"][0].update(on_fail="page"),
            "checks[0].on_fail: expected one of rollback, hold, got 'page'",
        ),
        (lambda p: p["checks"][0]["canary"].pop("data"), "checks[0].canary: expected one of 'data'"),
        (
            lambda p: p["checks"][0]["canary"].update(cloudwatch={"baseline": 'Version="v1"'}),
            "checks[0].canary: expected one of 'data' (a CSV file), 'prometheus' {url, baseline, canary} or "
            "'cloudwatch' {baseline, canary, region}; got cloudwatch and data",
        ),
        (
            lambda p: (p["checks"][0]["canary"].pop("data"), p["checks"][0]["canary"].update(cloudwatch="eu-west-1")),
            "checks[0].canary.cloudwatch: expected a mapping",
        ),
        (lambda p: p["checks"][1]["error_budget"].update(min_remaining=25), "checks[1].error_budget.min_remaining"),
        (lambda p: p["checks"][3]["deploy_window"].update(allow=["weekdays"]), "checks[3].deploy_window.allow"),
        (lambda p: p["checks"].append({"smoke": {}}), "checks[5]: expected exactly one of"),
        (lambda p: p.update(colour="red"), "unknown key(s) ['colour']"),
    ],
)
def test_policy_errors_name_the_field(mutate, message):
    import copy

    raw = copy.deepcopy(POLICY)
    mutate(raw)
    with pytest.raises(PolicyError) as err:
        policy_from_mapping(raw)
    assert message in str(err.value)
