"""The AWS services around the demo's CodePipeline releases, as their EventBridge events: CodeBuild builds,
CodeDeploy deployments, CloudWatch alarm state changes and CodeCommit pushes (the repositories are
mirrored to CodeCommit).

Their draws come from a stream of their own (`Timeline.aws`), so adding them leaves the rest of a seed's
history as it was, apart from build actions lasting as long as their builds' queues.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .organisation import AWS_ACCOUNT, AWS_REGION, Service, mirror
from .timeline import Timeline, iso, minutes, poisson

ALARM_THRESHOLD = 1.0  # percent of requests answered 5xx


def console_time(t: datetime) -> str:
    """A CodeBuild event time as CodeBuild writes it: "Sep 1, 2017 4:12:29 PM" (UTC)."""
    hour = t.hour % 12 or 12
    return f"{t:%b} {t.day}, {t.year} {hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"


def alarm_time(t: datetime) -> str:
    """A CloudWatch alarm state time: 2019-10-02T17:04:40.989+0000."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class AlarmEpisode:
    """A stay of a service's 5xx alarm in ALARM, and the error rate that took it there."""

    start: datetime
    end: datetime
    rate: float


class AwsEvents(Timeline):
    """EventBridge events of CodeBuild, CodeDeploy, CloudWatch and CodeCommit for the CodePipeline services."""

    def eventbridge(self, at: datetime, source: str, detail_type: str, resources: list[str], detail: dict) -> dict:
        """An EventBridge event of `source` (aws.<source>) in the demo's account and region."""
        return {
            "version": "0",
            "id": self.uuid(self.aws),
            "detail-type": detail_type,
            "source": f"aws.{source}",
            "account": AWS_ACCOUNT,
            "time": iso(at),
            "region": AWS_REGION,
            "resources": resources,
            "detail": detail,
        }

    # -- CodeBuild --

    def queue_wait(self) -> timedelta:
        """How long a build waits for a build host: mostly up to two minutes, sometimes many."""
        if self.aws.random() < 0.85:
            return timedelta(seconds=self.aws.randint(0, 120))
        return self.lognormal(6, 0.6, 2, 40, self.aws)

    def codebuild_build(
        self, svc: Service, build_id: str, act_start: datetime, work: timedelta, ok: bool, command: str
    ) -> datetime:
        """A build a CodeBuild action started at `act_start`: submitted, queued, `work` long; returns when
        CodePipeline sees it finish (the action's end)."""
        rng = self.aws
        project = build_id.split(":", 1)[0]
        arn = f"arn:aws:codebuild:{AWS_REGION}:{AWS_ACCOUNT}:build/{build_id}"
        submitted = (act_start + timedelta(seconds=rng.randint(1, 4))).replace(microsecond=0)
        queued = self.queue_wait()
        seconds = max(int(work.total_seconds()), 90)
        steps = [
            ("PROVISIONING", rng.randint(15, 45)),
            ("DOWNLOAD_SOURCE", rng.randint(2, 8)),
            ("INSTALL", rng.randint(5, 30)),
            ("PRE_BUILD", rng.randint(1, 10)),
        ]
        tail = [("POST_BUILD", rng.randint(1, 5)), ("UPLOAD_ARTIFACTS", rng.randint(1, 6))] if ok else []
        tail.append(("FINALIZING", rng.randint(2, 5)))
        build = max(seconds - sum(s for _, s in steps + tail), 30)
        phases: list[dict[str, Any]] = [self.phase("SUBMITTED", submitted, timedelta(0), True)]
        phases.append(self.phase("QUEUED", submitted, queued, True))
        t = submitted + queued
        for name, secs in [*steps, ("BUILD", build), *tail]:
            failed = name == "BUILD" and not ok
            context = [f"COMMAND_EXECUTION_ERROR: Error while executing command: {command}. Reason: exit status 2"]
            phases.append(self.phase(name, t, timedelta(seconds=secs), not failed, context if failed else []))
            t += timedelta(seconds=secs)
        phases.append({"start-time": console_time(t), "phase-type": "COMPLETED"})
        info = {
            "environment": {
                "image": "aws/codebuild/standard:7.0",
                "privileged-mode": False,
                "compute-type": "BUILD_GENERAL1_MEDIUM",
                "type": "LINUX_CONTAINER",
                "environment-variables": [],
            },
            "timeout-in-minutes": 60,
            "build-complete": False,
            "initiator": f"codepipeline/{svc.pipeline}",
            "build-start-time": console_time(submitted),
            "source": {"type": "CODEPIPELINE"},
            "logs": {
                "group-name": f"/aws/codebuild/{project}",
                "stream-name": build_id.split(":", 1)[1],
                "deep-link": f"https://console.aws.amazon.com/cloudwatch/home?region={AWS_REGION}#logEvent:"
                f"group=/aws/codebuild/{project};stream={build_id.split(':', 1)[1]}",
            },
        }

        def state(at: datetime, status: str, additional: dict, current: str) -> None:
            detail = {
                "build-status": status,
                "project-name": project,
                "build-id": arn,
                "additional-information": additional,
                "current-phase": current,
                "current-phase-context": "[]",
                "version": "1",
            }
            self.emit(
                at, "codebuild", None, self.eventbridge(at, "codebuild", "CodeBuild Build State Change", [arn], detail)
            )

        started = [{"start-time": console_time(submitted), "phase-type": "SUBMITTED"}]
        state(submitted, "IN_PROGRESS", {**info, "phases": started}, "SUBMITTED")
        ended = t + timedelta(seconds=rng.randint(0, 2))
        final = {**info, "build-complete": True, "phases": phases}
        if ok:
            artifact = (
                f"arn:aws:s3:::acme-retail-pipeline-artifacts/{svc.pipeline}/BuildArtif/{rng.getrandbits(28):07x}"
            )
            final = {"artifact": {"location": artifact}, **final}
        state(ended, "SUCCEEDED" if ok else "FAILED", final, "COMPLETED")
        return ended + timedelta(seconds=rng.randint(2, 20))

    @staticmethod
    def phase(name: str, start: datetime, length: timedelta, ok: bool, context: list[str] | None = None) -> dict:
        """One finished phase of a build, as `additional-information.phases` lists it."""
        return {
            "phase-context": context or [],
            "start-time": console_time(start),
            "end-time": console_time(start + length),
            "duration-in-seconds": int(length.total_seconds()),
            "phase-type": name,
            "phase-status": "SUCCEEDED" if ok else "FAILED",
        }

    # -- CodeDeploy --

    def codedeploy_deployment(
        self, svc: Service, deployment_id: str, act_start: datetime, done: datetime, ok: bool
    ) -> None:
        """The production deployment a CodeDeploy action ran from `act_start` to `done`: START, SUCCESS/FAILURE."""
        rng = self.aws
        group = f"{svc.name}-production"
        resources = [
            f"arn:aws:codedeploy:{AWS_REGION}:{AWS_ACCOUNT}:application:{svc.name}",
            f"arn:aws:codedeploy:{AWS_REGION}:{AWS_ACCOUNT}:deploymentgroup:{svc.name}/{group}",
        ]
        instance_group = self.uuid(rng)
        for at, state in (
            (act_start + timedelta(seconds=rng.randint(1, 5)), "START"),
            (done - timedelta(seconds=rng.randint(1, 20)), "SUCCESS" if ok else "FAILURE"),
        ):
            detail = {
                "instanceGroupId": instance_group,
                "region": AWS_REGION,
                "application": svc.name,
                "deploymentId": deployment_id,
                "state": state,
                "deploymentGroup": group,
            }
            self.emit(
                at,
                "codedeploy",
                None,
                self.eventbridge(
                    at, "codedeploy", "CodeDeploy Deployment State-change Notification", resources, detail
                ),
            )

    # -- CloudWatch --

    def alarm_after(self, svc: Service, deployed: datetime, recovered: datetime) -> None:
        """The service's 5xx alarm fires a few minutes after a bad deployment and clears after recovery."""
        rng = self.aws
        start = deployed + minutes(rng.uniform(0.5, 3))
        end = max(recovered, start) + minutes(rng.uniform(2, 8))
        self.alarm_episodes.setdefault(svc.name, []).append(AlarmEpisode(start, end, rng.uniform(4, 30)))

    def alarms(self) -> None:
        """Each CodePipeline service's alarm episodes, plus a few short ones no deployment caused, as events."""
        rng = self.aws
        for svc in self.org:
            if svc.platform != "codepipeline":
                continue
            episodes = list(self.alarm_episodes.get(svc.name, []))
            span = (self.end - self.start).total_seconds()
            for _ in range(poisson(rng, span / 86400 / 15)):
                start = self.start + timedelta(seconds=rng.uniform(0, span))
                episode = AlarmEpisode(start, start + minutes(rng.uniform(2, 12)), rng.uniform(1.2, 5))
                if all(
                    episode.end + timedelta(hours=1) < e.start or e.end + timedelta(hours=1) < start for e in episodes
                ):
                    episodes.append(episode)
            since, calm = self.start - timedelta(days=rng.uniform(1, 30)), rng.uniform(0.05, ALARM_THRESHOLD / 2)
            for e in sorted(episodes, key=lambda e: e.start):
                self.alarm_change(svc, e.start, "ALARM", e.rate, since, "OK", calm)
                since, calm = e.end, rng.uniform(0.05, ALARM_THRESHOLD / 2)
                self.alarm_change(svc, e.end, "OK", calm, e.start, "ALARM", e.rate)

    def alarm_change(
        self, svc: Service, at: datetime, state: str, value: float, since: datetime, previous: str, before: float
    ) -> None:
        """One "CloudWatch Alarm State Change" of the service's 5xx alarm, from `previous` (since `since`)."""
        name = f"{svc.name}-5xx-rate"
        arn = f"arn:aws:cloudwatch:{AWS_REGION}:{AWS_ACCOUNT}:alarm:{name}"
        detail = {
            "alarmName": name,
            "configuration": {
                "description": f"Goes into alarm when more than {ALARM_THRESHOLD}% of {svc.name} requests fail (5xx)",
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "dimensions": {"service": svc.name},
                                "name": "5xxRate",
                                "namespace": "AcmeRetail/HTTP",
                            },
                            "period": 60,
                            "stat": "Average",
                        },
                        "returnData": True,
                    }
                ],
            },
            "previousState": self.alarm_state(since, previous, before),
            "state": self.alarm_state(at, state, value),
        }
        self.emit(
            at, "cloudwatch", None, self.eventbridge(at, "cloudwatch", "CloudWatch Alarm State Change", [arn], detail)
        )

    @staticmethod
    def alarm_state(at: datetime, value: str, rate: float) -> dict:
        """An alarm state as the event gives it: why (the datapoint against the threshold), when, which."""
        point = at.replace(second=0, microsecond=0) - timedelta(minutes=1)
        crossed = "was greater than" if value == "ALARM" else "was not greater than"
        transition = "OK -> ALARM" if value == "ALARM" else "ALARM -> OK"
        data = {
            "version": "1.0",
            "queryDate": alarm_time(at),
            "startDate": alarm_time(point),
            "statistic": "Average",
            "period": 60,
            "recentDatapoints": [round(rate, 4)],
            "threshold": ALARM_THRESHOLD,
        }
        sample = f"{round(rate, 4)} ({point:%d/%m/%y %H:%M:%S})"
        return {
            "reason": f"Threshold Crossed: 1 out of the last 1 datapoints [{sample}] {crossed} the threshold "
            f"({ALARM_THRESHOLD}) (minimum 1 datapoint for {transition} transition).",
            "reasonData": json.dumps(data, separators=(",", ":")),
            "timestamp": alarm_time(at),
            "value": value,
        }

    # -- CodeCommit --

    def codecommit_push(self, svc: Service, old: str, new: str, pushed: datetime) -> None:
        """The CodeCommit mirror of the service's repository receives GitHub's push to main a little later."""
        rng = self.aws
        name = mirror(svc)
        at = pushed + timedelta(seconds=rng.randint(5, 40))  # never before GitHub's push: merge times stay GitHub's
        detail = {
            "event": "referenceUpdated",
            "repositoryName": name,
            "repositoryId": self.repository_ids.setdefault(name, self.uuid(rng)),
            "referenceType": "branch",
            "referenceName": "main",
            "referenceFullName": "refs/heads/main",
            "commitId": new,
            "oldCommitId": old,
        }
        resources = [f"arn:aws:codecommit:{AWS_REGION}:{AWS_ACCOUNT}:{name}"]
        self.emit(
            at,
            "codecommit",
            None,
            self.eventbridge(at, "codecommit", "CodeCommit Repository State Change", resources, detail),
        )
