"""A failed gate action is re-attempted by the next call with the decision's key and by `gatewatch gate
retry-actions`, up to its max_attempts, every attempt in the audit log, never an ok one and never by two
callers at once; `codedeploy_stop` finds the CodeDeploy deployment id in the store. CodeDeploy through
botocore's Stubber, webhooks against real HTTP servers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import yaml
from click.testing import CliRunner

from collector import ingest
from collector.gate_decisions import get_decision, record_actions, update_actions
from collector.timeutil import utcnow
from gates.policy import PolicyError, policy_from_mapping
from gatewatch import api
from gatewatch.cli import cli
from tests.conftest import fixture_path
from tests.test_gate_actions import FROZEN, Hook, context, evaluate, factory, gate, stubbed
from tests.test_source_codedeploy import event

STOP = {"deploymentId": "d-RETRY0001", "autoRollbackEnabled": True}
DOC_DEPLOYMENT = "codepipeline:myPipeline:5e1f7a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"  # the documented execution


def throttled(stub, params=STOP) -> None:
    stub.add_client_error("stop_deployment", "ThrottlingException", "Rate exceeded", 400, expected_params=params)


def stopped(stub, params=STOP) -> None:
    stub.add_response("stop_deployment", {"status": "Pending"}, params)


def attempts(outcome: dict) -> list[tuple[int, str]]:
    return [(h["attempt"], h["status"]) for h in outcome["history"]]


# --- the next call with the key ------------------------------------------------------------------------


def test_a_failed_stop_is_retried_by_the_next_call_with_the_key_and_both_attempts_are_logged(engine):
    client, stub = stubbed("codedeploy")
    throttled(stub)
    stopped(stub)
    policy = gate([{"codedeploy_stop": {"deployment_id": "d-RETRY0001"}}])
    with stub:
        first = evaluate(policy, context(engine), "k-retry", clients=factory(codedeploy=client))
        (failed,) = first.actions
        assert (failed["status"], failed["attempt"], failed["max_attempts"]) == ("failed", 1, 3)
        assert failed["error"] == "StopDeployment: ThrottlingException: Rate exceeded"
        again = evaluate(policy, context(engine), "k-retry", clients=factory(codedeploy=client))
        stub.assert_no_pending_responses()
    assert again.id == first.id and not again.first and again.decision == "rollback"
    (outcome,) = again.actions
    assert outcome["status"] == "ok" and outcome["attempt"] == 2 and "Pending" in outcome["detail"]
    assert attempts(outcome) == [(1, "failed"), (2, "ok")]
    assert outcome["history"][0]["error"] == failed["error"] and outcome["history"][0]["started_at"]
    assert outcome["history"][1]["started_at"] >= outcome["history"][0]["started_at"]
    stored = get_decision(engine, decision_id=first.id)  # what GET /v1/decisions/{id} and the dashboard read
    assert stored.actions == again.actions and "claim" not in stored.actions[0]
    log = api.gate_decisions_between(engine, utcnow() - timedelta(hours=1), utcnow() + timedelta(minutes=1))
    assert attempts(log["actions"].iloc[0][0]) == [(1, "failed"), (2, "ok")]
    # and a third call has nothing to do: the Stubber is empty, a StopDeployment would fail the action
    with stub:
        third = evaluate(policy, context(engine), "k-retry", clients=factory(codedeploy=client))
    assert third.actions == again.actions


def test_the_limit_stops_retries_and_an_ok_action_is_never_rerun(engine):
    client, stub = stubbed("codedeploy")
    throttled(stub)
    throttled(stub)
    with Hook() as hook, stub:
        policy = gate(
            [{"webhook": {"url": hook.url}}, {"codedeploy_stop": {"deployment_id": "d-RETRY0001"}, "max_attempts": 2}]
        )
        calls = [evaluate(policy, context(engine), "k-limit", clients=factory(codedeploy=client)) for _ in range(3)]
        stub.assert_no_pending_responses()  # two StopDeployments, none on the third call
    assert len(hook.requests) == 1  # the ok webhook ran once, for the deciding call
    hook_outcome, stop = calls[-1].actions
    assert hook_outcome["status"] == "ok" and attempts(hook_outcome) == [(1, "ok")]
    assert stop["status"] == "failed" and (stop["attempt"], stop["max_attempts"]) == (2, 2)
    assert attempts(stop) == [(1, "failed"), (2, "failed")]
    assert calls[1].actions == calls[2].actions


def test_the_policy_limit_and_per_action_limit_validate():
    policy = gate([{"webhook": {"url": "https://h.example/x"}, "max_attempts": 1}, {"codedeploy_stop": {}}])
    assert [policy.max_attempts(a) for a in policy.actions] == [1, 3]
    check = [{"deploy_window": FROZEN}]
    with pytest.raises(PolicyError, match=r"actions_max_attempts.*from 1 to 20"):
        policy_from_mapping({"name": "g", "checks": check, "actions_max_attempts": 0})
    with pytest.raises(PolicyError, match=r"max_attempts.*from 1 to 20"):
        policy_from_mapping({"name": "g", "checks": check, "actions": [{"codedeploy_stop": {}, "max_attempts": 21}]})


# --- claims: never two callers on one action -----------------------------------------------------------


def claim_as_another_caller(engine, decision_id: str, minutes_ago: float) -> None:
    at = (utcnow() - timedelta(minutes=minutes_ago)).isoformat()

    def change(actions):
        claim = {"status": "running", "claim": "other", "claimed_at": at}
        return [a | claim | {"attempt": len(a["history"]) + 1} for a in actions]

    update_actions(engine, decision_id, change)


def test_an_action_another_caller_is_running_is_left_alone_and_a_stale_claim_is_retried(engine):
    client, stub = stubbed("codedeploy")
    throttled(stub)
    policy = gate([{"codedeploy_stop": {"deployment_id": "d-RETRY0001"}}])
    with stub:
        first = evaluate(policy, context(engine), "k-claim", clients=factory(codedeploy=client))
    claim_as_another_caller(engine, first.id, minutes_ago=1)
    with stub:  # empty: a StopDeployment now would be recorded as a failed attempt 2
        busy = evaluate(policy, context(engine), "k-claim", clients=factory(codedeploy=client))
    (outcome,) = busy.actions
    assert outcome["status"] == "running" and outcome["claim"] == "other" and attempts(outcome) == [(1, "failed")]

    claim_as_another_caller(engine, first.id, minutes_ago=0)  # claimed just now
    report = api.retry_gate_actions(engine, api.load_config(), policy, "k-claim")
    assert (report.retried, report.busy) == ([], [0])

    claim_as_another_caller(engine, first.id, minutes_ago=60)  # its caller died: the claim is stale
    stopped(stub)
    with stub:
        report = api.retry_gate_actions(
            engine, api.load_config(), policy, "k-claim", clients=factory(codedeploy=client)
        )
        stub.assert_no_pending_responses()
    (outcome,) = report.actions
    assert report.retried == [0] and outcome["status"] == "ok" and outcome["attempt"] == 3
    assert attempts(outcome) == [(1, "failed"), (2, "failed"), (3, "ok")]
    assert outcome["history"][1]["error"] == "interrupted: no outcome was recorded"


def test_a_stale_claim_on_the_last_attempt_is_recorded_as_failed_and_not_retried(engine):
    client, stub = stubbed("codedeploy")
    throttled(stub)
    policy = gate([{"codedeploy_stop": {"deployment_id": "d-RETRY0001"}, "max_attempts": 2}])
    with stub:
        first = evaluate(policy, context(engine), "k-stale", clients=factory(codedeploy=client))
    claim_as_another_caller(engine, first.id, minutes_ago=60)
    with stub:  # empty: a StopDeployment now would be a third attempt
        report = api.retry_gate_actions(engine, api.load_config(), policy, "k-stale")
    assert (report.retried, report.exhausted) == ([], [0])
    (outcome,) = get_decision(engine, decision_id=first.id).actions
    assert outcome["status"] == "failed" and attempts(outcome) == [(1, "failed"), (2, "failed")]
    assert outcome["error"] == "interrupted: no outcome was recorded"


def test_nothing_is_retried_while_the_deciding_call_is_still_recording_its_actions(engine):
    client, stub = stubbed("codedeploy")
    throttled(stub)
    throttled(stub, {"deploymentId": "d-RETRY0002", "autoRollbackEnabled": True})
    policy = gate([{"codedeploy_stop": {"deployment_id": d}} for d in ("d-RETRY0001", "d-RETRY0002")])
    with stub:
        first = evaluate(policy, context(engine), "k-young", clients=factory(codedeploy=client))
    record_actions(engine, first.id, first.actions[:1])  # as the deciding call stores it after its first action
    with stub:  # empty: a StopDeployment now would be recorded as a failed attempt 2
        report = api.retry_gate_actions(engine, api.load_config(), policy, "k-young")
    assert report.incomplete and report.retried == [] and report.actions == first.actions[:1]


def test_two_racing_retries_attempt_a_failed_action_once(engine):
    with Hook(answers=[400], delay=0.2) as hook:  # the deciding call's 400 is not retried within the call
        policy = gate([{"webhook": {"url": hook.url}}])
        first = evaluate(policy, context(engine), "k-race")
        assert first.actions[0]["status"] == "failed" and len(hook.requests) == 1
        barrier, reports, errors = threading.Barrier(2), [], []

        def retry():
            barrier.wait()
            try:
                reports.append(api.retry_gate_actions(engine, api.load_config(), policy, "k-race"))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=retry) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == [] and len(reports) == 2
    assert len(hook.requests) == 2  # the deciding call's, and one retry
    bodies = [json.loads(r["body"]) for r in hook.requests]
    assert bodies[1]["id"] == first.id and bodies[1]["actions"] == [] == bodies[0]["actions"]
    assert hook.requests[1]["headers"]["Idempotency-Key"] == first.id
    assert sorted(len(r.retried) for r in reports) == [0, 1]
    loser = next(r for r in reports if not r.retried)
    assert loser.busy == [0] or loser.actions[0]["status"] == "ok"  # it came while the other ran, or after
    (outcome,) = get_decision(engine, decision_id=first.id).actions
    assert outcome["status"] == "ok" and attempts(outcome) == [(1, "failed"), (2, "ok")]


# --- gatewatch gate retry-actions ------------------------------------------------------------------------


def test_cli_retry_actions_exit_codes(tmp_path, store_url, engine, gatewatch):
    """Through click's CliRunner; the usage errors through the installed command (its entry point turns
    them into one line and exit 2)."""
    with Hook(answers=[400, 400]) as hook:
        policy = {
            "name": "checkout-prod",
            "checks": [{"deploy_window": FROZEN, "on_fail": "rollback"}],
            "actions": [{"webhook": {"url": hook.url}}],
        }
        path = tmp_path / "gate.yaml"
        path.write_text(yaml.safe_dump(policy))
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump(policy | {"name": "payments-prod"}))

        def run(*args):
            return CliRunner().invoke(cli, ["--db", store_url, "gate", *args])

        decided = run("check", "--policy", str(path), "--key", "cli-r")
        assert decided.exit_code == 1 and "ACTION FAILED (attempt 1 of 3): webhook" in decided.stderr
        again = run("retry-actions", "cli-r", "--policy", str(path))
        assert again.exit_code == 1, again.output
        assert "ACTION FAILED (attempt 2 of 3): webhook" in again.stderr and "HTTP 400" in again.stderr
        done = run("retry-actions", "cli-r", "--policy", str(path), "--json")
        assert done.exit_code == 0, done.output
        out = json.loads(done.stdout)
        assert (out["key"], out["decision"], out["retried"]) == ("cli-r", "rollback", [0])
        assert [(h["attempt"], h["status"]) for h in out["actions"][0]["history"]] == [
            (1, "failed"),
            (2, "failed"),
            (3, "ok"),
        ]
        nothing = run("retry-actions", "cli-r", "--policy", str(path))
        unknown = gatewatch("--db", store_url, "gate", "retry-actions", "no-such-key", "--policy", str(path))
        wrong = gatewatch("--db", store_url, "gate", "retry-actions", "cli-r", "--policy", str(other))
        bad = gatewatch("--db", store_url, "gate", "retry-actions", "cli-r", "--policy", str(path), "--param", "oops")
        assert len(hook.requests) == 3
    assert nothing.exit_code == 3 and "retried 0 of 1 action(s)" in nothing.stdout
    assert unknown.returncode == 2 and "KEY 'no-such-key': no gate decision has this idempotency key" in unknown.stderr
    assert wrong.returncode == 2 and "is gate 'checkout-prod', the policy is 'payments-prod'" in wrong.stderr
    assert bad.returncode == 2 and "--param 'oops': expected NAME=VALUE" in bad.stderr
    assert all("Traceback" not in r.stderr and r.stderr.count("\n") == 1 for r in (unknown, wrong, bad))


def test_cli_retry_actions_at_the_limit_exits_3_and_says_so(tmp_path, store_url, engine):
    with Hook(default=400) as hook:
        policy = {
            "name": "checkout-prod",
            "checks": [{"deploy_window": FROZEN, "on_fail": "rollback"}],
            "actions": [{"webhook": {"url": hook.url}, "max_attempts": 1}],
        }
        path = tmp_path / "gate.yaml"
        path.write_text(yaml.safe_dump(policy))
        runner = CliRunner()
        decided = runner.invoke(cli, ["--db", store_url, "gate", "check", "--policy", str(path), "--key", "lim"])
        res = runner.invoke(cli, ["--db", store_url, "gate", "retry-actions", "lim", "--policy", str(path)])
    assert decided.exit_code == 1 and "(attempt 1 of 1; no attempts left)" in decided.stderr
    assert res.exit_code == 3 and f"NOT RETRIED (no attempts left): webhook {hook.url}: HTTP 400" in res.stderr
    assert len(hook.requests) == 1


# --- codedeploy_stop finds the deployment id ---------------------------------------------------------------


def test_codedeploy_stop_takes_the_codedeploy_action_of_the_deployments_pipeline_run(engine, config):
    events = [json.loads(line) for line in fixture_path("aws/codepipeline-execution.documented.ndjson").open()]
    assert ingest.ingest_payloads(engine, events, config).quarantined == []
    client, stub = stubbed("codedeploy")
    stopped(stub, {"deploymentId": "d-ABCDEF456", "autoRollbackEnabled": True})  # the Prod action's retry
    with stub:
        stored = api.evaluate_gate(
            engine,
            config,
            gate([{"codedeploy_stop": {}}]),
            api.GateRequest(DOC_DEPLOYMENT, "myPipeline", key="doc"),
            clients=factory(codedeploy=client),
        )
        stub.assert_no_pending_responses()
    (outcome,) = stored.actions
    assert outcome["status"] == "ok", outcome
    assert outcome["detail"] == (
        "StopDeployment d-ABCDEF456: Pending; deployment id found in the CodeDeploy actions of pipeline run "
        f"{DOC_DEPLOYMENT}"
    )


def test_codedeploy_stop_takes_the_newest_in_progress_codedeploy_deployment_of_the_service(engine, config):
    finished = json.loads(fixture_path("aws/codedeploy-deployment-state-change.published.json").read_text())
    started = [
        event("deployment", "d-OLDER0001", "START", "2024-05-01T10:00:00Z", app="myApplication"),
        event("deployment", "d-NEWER0002", "START", "2024-05-01T10:05:00Z", app="myApplication"),
        event("deployment", "d-OTHERSVC", "START", "2024-05-01T10:09:00Z", app="payments"),
    ]
    assert ingest.ingest_payloads(engine, [finished, *started], config).quarantined == []
    client, stub = stubbed("codedeploy")
    stopped(stub, {"deploymentId": "d-NEWER0002", "autoRollbackEnabled": True})
    with stub:
        stored = api.evaluate_gate(
            engine,
            config,
            gate([{"codedeploy_stop": {}}]),
            api.GateRequest("release-42", "myApplication", key="svc"),
            clients=factory(codedeploy=client),
        )
        stub.assert_no_pending_responses()
    (outcome,) = stored.actions
    assert outcome["status"] == "ok", outcome
    assert outcome["detail"].startswith(
        "StopDeployment d-NEWER0002: Pending; deployment id the newest in progress of 2"
    )
    assert outcome["detail"].endswith("not d-OLDER0001")
    assert "CodeDeploy deployments of service myApplication" in outcome["detail"]


def test_codedeploy_stop_of_a_codedeploy_deployment_and_nothing_found(engine, config):
    client, stub = stubbed("codedeploy")
    stopped(stub, {"deploymentId": "d-123456789", "autoRollbackEnabled": True})
    policy = gate([{"codedeploy_stop": {}}])
    with stub:
        direct = api.evaluate_gate(
            engine,
            config,
            policy,
            api.GateRequest("codedeploy:d-123456789", key="direct"),
            clients=factory(codedeploy=client),
        )
        request = api.GateRequest("release-1", "checkout", key="none")
        missing = api.evaluate_gate(engine, config, policy, request, clients=factory(codedeploy=client))
        stub.assert_no_pending_responses()
    assert direct.actions[0]["detail"].endswith("deployment id the gate's deployment codedeploy:d-123456789")
    (outcome,) = missing.actions
    assert outcome["status"] == "failed"
    assert outcome["error"] == (
        "no CodeDeploy deployment id: set codedeploy_stop.deployment_id in the policy or pass the "
        "codedeploy_deployment_id parameter (nothing found in the CodeDeploy actions of pipeline run release-1 "
        "nor in the in-progress CodeDeploy deployments of service checkout (stored CodeDeploy events))"
    )


def test_the_gate_decisions_page_shows_every_attempt(engine, store_url, monkeypatch, tmp_path, fresh_dashboard):
    from tests.test_dashboard import app, run_page

    client, stub = stubbed("codedeploy")
    throttled(stub)
    stopped(stub)
    policy = gate([{"codedeploy_stop": {"deployment_id": "d-RETRY0001"}}])
    with stub:
        for _ in range(2):
            evaluate(policy, context(engine), "k-page", clients=factory(codedeploy=client))
    at = run_page(app(monkeypatch, store_url, tmp_path=tmp_path), "views/gates.py")
    summary = at.dataframe[0].value
    assert list(summary["actions"]) == ["codedeploy_stop: ok (attempt 2 of 3)"]
    (attempt_table,) = [d.value for d in at.dataframe if "attempt" in d.value.columns and "detail or error" in d.value]
    assert list(zip(attempt_table["attempt"], attempt_table["status"], strict=True)) == [(1, "failed"), (2, "ok")]
    assert attempt_table["detail or error"].iloc[0] == "StopDeployment: ThrottlingException: Rate exceeded"


def test_over_http_a_second_evaluate_retries_and_get_decision_shows_both_attempts(engine, tmp_path):
    from fastapi.testclient import TestClient

    from tests.test_gate_api import AUTH, make_app

    with Hook(answers=[400]) as hook:
        folder = tmp_path / "policies"
        folder.mkdir()
        policy = {
            "name": "checkout-prod",
            "checks": [{"deploy_window": FROZEN, "on_fail": "rollback"}],
            "actions": [{"webhook": {"url": hook.url}}],
        }
        (folder / "gate.yaml").write_text(yaml.safe_dump(policy))
        with TestClient(make_app(engine, folder)) as client:
            body = {"deployment_id": "deploy-9", "key": "http-1"}
            first = client.post("/v1/gates/checkout-prod/evaluate", json=body, headers=AUTH).json()
            again = client.post("/v1/gates/checkout-prod/evaluate", json=body, headers=AUTH).json()
            read = client.get(f"/v1/decisions/{first['id']}", headers=AUTH).json()
    assert first["actions"][0]["status"] == "failed" and again["replayed"] is True and again["id"] == first["id"]
    assert again["actions"] == read["actions"] and len(hook.requests) == 2
    assert attempts(read["actions"][0]) == [(1, "failed"), (2, "ok")] and read["actions"][0]["detail"] == (
        "HTTP 200 after 1 attempt"
    )
