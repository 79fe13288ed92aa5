"""AWS CodePipeline releases and rollbacks as EventBridge pipeline, stage and action events, with the
CodeBuild builds and CodeDeploy deployments their actions run and the alarms bad deployments raise."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from .aws import AwsEvents
from .organisation import AWS_ACCOUNT, AWS_REGION, Person, Service
from .timeline import Deployment, ServiceState, iso, iso_ms, minutes

COMMANDS = {"Build": "make build", "Test": "make integration-test"}  # what a failing build's log names


class CodePipeline(AwsEvents):
    """Releases of the services on CodePipeline: Source -> Build -> Test -> Approval -> Prod."""

    def codepipeline_event(
        self,
        svc: Service,
        execution: str,
        started: datetime,
        trigger: dict,
        attempt: int,
        at: datetime,
        state: str,
        stage: str | None = None,
        action: str | None = None,
        action_type: dict | None = None,
        result: dict | None = None,
        action_execution: str | None = None,
    ) -> None:
        """One EventBridge event: a pipeline, stage (`stage`) or action (`action`) execution's state change."""
        level = "Action" if action else "Stage" if stage else "Pipeline"
        detail: dict[str, Any] = {
            "pipeline": svc.pipeline,
            "execution-id": execution,
            "start-time": iso_ms(started),
            "execution-trigger": trigger,
        }
        if stage:
            detail["stage"] = stage
        if result:
            detail["execution-result"] = result
        if action:
            detail.update(
                {"action-execution-id": action_execution, "action": action, "region": AWS_REGION, "type": action_type}
            )
        detail.update({"state": state, "version": 7, "pipeline-execution-attempt": attempt})
        self.emit(
            at,
            "codepipeline",
            None,
            {
                "version": "0",
                "id": self.uuid(),
                "detail-type": f"CodePipeline {level} Execution State Change",
                "source": "aws.codepipeline",
                "account": AWS_ACCOUNT,
                "time": iso(at),
                "region": AWS_REGION,
                "resources": [f"arn:aws:codepipeline:{AWS_REGION}:{AWS_ACCOUNT}:{svc.pipeline}"],
                "detail": detail,
            },
        )

    STAGES = (
        (
            "Source",
            "Source",
            {"owner": "AWS", "category": "Source", "provider": "CodeStarSourceConnection", "version": "1"},
            (0.1, 0.5),
        ),
        ("Build", "Build", {"owner": "AWS", "category": "Build", "provider": "CodeBuild", "version": "1"}, (3, 9)),
        (
            "Test",
            "IntegrationTests",
            {"owner": "AWS", "category": "Test", "provider": "CodeBuild", "version": "1"},
            (4, 12),
        ),
        (
            "Approval",
            "ManualApproval",
            {"owner": "AWS", "category": "Approval", "provider": "Manual", "version": "1"},
            None,
        ),
        ("Prod", "Deploy", {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": "1"}, (4, 12)),
    )

    def action_result(
        self, svc: Service, stage: str, ok: bool, head_sha: str, message: str, approver: Person | None
    ) -> dict:
        """An action's `execution-result` as its provider reports it (CodeBuild, CodeDeploy, an approver)."""
        rng = self.rng
        if stage == "Source":
            summary = json.dumps({"ProviderType": "GitHub", "CommitMessage": message.splitlines()[0]})
            return {"external-execution-id": head_sha, "external-execution-summary": summary}
        if stage in ("Build", "Test"):
            project = f"{svc.name}-{stage.lower()}"
            out = {
                "external-execution-id": f"{project}:{self.uuid()}",
                "external-execution-summary": "Build succeeded"
                if ok
                else (
                    "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, Message: "
                    f"Error while executing command: {COMMANDS[stage]}. "
                    "Reason: exit status 2"
                ),
            }
            return out if ok else {**out, "error-code": "JobFailed"}
        if stage == "Approval":
            login = approver.login if approver else "ops"
            who = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/ReleaseApprovers/{login}"
            return {"external-execution-summary": f"{'Approved' if ok else 'Rejected'} by {who}"}
        deployment = "d-" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(9))
        out = {
            "external-execution-id": deployment,
            "external-execution-summary": "Deployment Succeeded"
            if ok
            else f"Deployment {deployment} failed: the deployment failed because too many individual instances "
            "failed deployment",
        }
        return out if ok else {**out, "error-code": "JobFailed"}

    def codepipeline_release(
        self, svc: Service, st: ServiceState, head: dict, at: datetime
    ) -> tuple[Deployment | None, datetime]:
        """A push starts an execution: Source, Build, Test, a manual Approval, then the Prod deploy."""
        rng = self.rng
        execution = self.uuid()
        head_sha, message = head["id"], head["message"]
        self.version(st)
        started = at + timedelta(seconds=rng.randint(3, 40))
        trigger = {
            "trigger-type": "Webhook",
            "trigger-detail": f"arn:aws:codestar-connections:{AWS_REGION}:{AWS_ACCOUNT}:connection/"
            "7d2a61b4-09c3-4b1e-9f8e-2c5d0e6a1b77",
            "commit-id": head_sha,
            "branch-name": "main",
            "full-repository-name": svc.repository,
            "provider-type": "GitHub",
        }
        plan = self.plan()
        if plan == "ok" and rng.random() < 0.015:
            plan = "rejected"
        ev = lambda t, state, attempt, **kw: self.codepipeline_event(  # noqa: E731
            svc, execution, started, trigger, attempt, t, state, **kw
        )
        attempt, t = 1, started
        ev(t, "STARTED", attempt)
        for stage, action, action_type, span in self.STAGES:
            t += timedelta(seconds=rng.randint(1, 4))
            ev(t, "STARTED", attempt, stage=stage)
            approver = rng.choice(self.people[svc.team]) if stage == "Approval" else None
            fail = plan == {
                "Build": "build_fail",
                "Test": "test_fail",
                "Approval": "rejected",
                "Prod": "deploy_fail",
            }.get(stage) or (plan == "flaky" and stage == "Test")
            while True:
                action_id = self.uuid()
                act_start = t + timedelta(seconds=rng.randint(0, 2))
                ev(
                    act_start,
                    "STARTED",
                    attempt,
                    stage=stage,
                    action=action,
                    action_type=action_type,
                    action_execution=action_id,
                )
                if span is None:  # a person approves: minutes to hours, in their working hours
                    done = self.working(act_start + self.lognormal(25, 1.0, 1, 8 * 60), svc.offset)
                else:
                    done = act_start + minutes(rng.uniform(*span))
                result = self.action_result(svc, stage, not fail, head_sha, message, approver)
                done = self.provider_run(svc, stage, result, act_start, done, not fail)
                ev(
                    done,
                    "FAILED" if fail else "SUCCEEDED",
                    attempt,
                    stage=stage,
                    action=action,
                    action_type=action_type,
                    action_execution=action_id,
                    result=result,
                )
                t = done + timedelta(seconds=rng.randint(0, 2))
                ev(t, "FAILED" if fail else "SUCCEEDED", attempt, stage=stage)
                if not fail:
                    break
                t += timedelta(seconds=rng.randint(1, 3))
                ev(t, "FAILED", attempt)
                if plan != "flaky" or attempt > 1:
                    if plan == "deploy_fail" and rng.random() < 0.5 and st.last_good is not None:
                        restored = self.codepipeline_rollback(
                            svc, st, t + minutes(rng.uniform(0.2, 1)), "AutomatedRollback", execution
                        )
                        self.alarm_after(svc, t, restored)
                        return None, restored
                    if plan == "deploy_fail":  # the instances that failed are replaced with the old revision
                        self.alarm_after(svc, t, t + minutes(self.aws.uniform(5, 20)))
                    return None, t
                # RetryStageExecution on the same revision: the execution resumes and the flaky test passes
                attempt += 1
                t += self.lognormal(15, 0.8, 2, 120)
                ev(t, "RESUMED", attempt)
                ev(t + timedelta(seconds=1), "RESUMED", attempt, stage=stage)
                fail = False
                t += timedelta(seconds=1)
        t += timedelta(seconds=rng.randint(1, 3))
        ev(t, "SUCCEEDED", attempt)
        return Deployment(f"codepipeline:{svc.pipeline}:{execution}", execution, head_sha, "", t), t

    def codepipeline_rollback(self, svc: Service, st: ServiceState, at: datetime, kind: str, detail: str) -> datetime:
        """A rollback execution redeploys the last good revision: only the Prod stage runs."""
        rng = self.rng
        execution = self.uuid()
        trigger = {"trigger-type": kind, "trigger-detail": detail}
        stage, action, action_type, span = self.STAGES[-1]
        t = at
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "STARTED")
        t += timedelta(seconds=rng.randint(1, 4))
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "STARTED", stage=stage)
        action_id = self.uuid()
        self.codepipeline_event(
            svc,
            execution,
            at,
            trigger,
            1,
            t,
            "STARTED",
            stage=stage,
            action=action,
            action_type=action_type,
            action_execution=action_id,
        )
        act_start, t = t, t + minutes(rng.uniform(*span))
        result = self.action_result(svc, stage, True, "", "", None)
        t = self.provider_run(svc, stage, result, act_start, t, True)
        self.codepipeline_event(
            svc,
            execution,
            at,
            trigger,
            1,
            t,
            "SUCCEEDED",
            stage=stage,
            action=action,
            action_type=action_type,
            action_execution=action_id,
            result=result,
        )
        t += timedelta(seconds=rng.randint(0, 2))
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "SUCCEEDED", stage=stage)
        t += timedelta(seconds=rng.randint(1, 3))
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "SUCCEEDED")
        return t

    def provider_run(
        self, svc: Service, stage: str, result: dict, act_start: datetime, done: datetime, ok: bool
    ) -> datetime:
        """The CodeBuild build or CodeDeploy deployment an action ran (its external execution); returns when
        the action ends (a build's wait in CodeBuild's queue lengthens it)."""
        if stage in COMMANDS:
            return self.codebuild_build(
                svc, result["external-execution-id"], act_start, done - act_start, ok, COMMANDS[stage]
            )
        if stage == "Prod":
            self.codedeploy_deployment(svc, result["external-execution-id"], act_start, done, ok)
        return done
