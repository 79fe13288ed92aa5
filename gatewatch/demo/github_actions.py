"""GitHub Actions: workflow runs and their jobs, and the deployments and deployment statuses they create."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .github import Repository, node
from .organisation import GITHUB_CI_WORKFLOW, GITHUB_SERVICE_WORKFLOW, Person, Service
from .timeline import Deployment, ServiceState, Timeline, iso


@dataclass
class Run:
    """A GitHub Actions workflow run as it changes over its life (attempts, status)."""

    id: int
    number: int
    wf: tuple[str, str]
    event: str
    branch: str
    head: dict
    actor: Person
    created: datetime
    pull_requests: list
    check_suite: int
    attempt: int = 1
    started: datetime | None = None


JOB_STEPS = {
    "build": (
        ("Set up job", 2, 6),
        ("Checkout", 2, 8),
        ("Set up toolchain", 8, 40),
        ("Build and push image", 60, 300),
        ("Complete job", 1, 2),
    ),
    "test": (
        ("Set up job", 2, 6),
        ("Checkout", 2, 8),
        ("Run unit tests", 60, 240),
        ("Run integration tests", 60, 360),
        ("Complete job", 1, 2),
    ),
    "deploy": (
        ("Set up job", 2, 6),
        ("Configure AWS credentials", 2, 5),
        ("Deploy to production", 120, 420),
        ("Smoke test", 20, 90),
        ("Complete job", 1, 2),
    ),
}
FAILING_STEP = {"build": 3, "test": 3, "deploy": 2}  # index into JOB_STEPS


class GitHubActions(Timeline):
    """Releases of the services on GitHub Actions: `workflow_run`, `workflow_job`, `deployment` and
    `deployment_status` webhooks."""

    def workflow_run(self, gh: Repository, run: Run, action: str, at: datetime, conclusion: str | None = None) -> None:
        """A `workflow_run` webhook of the run in its current attempt: requested, in_progress or completed."""
        status = {"requested": "queued", "in_progress": "in_progress", "completed": "completed"}[action]
        svc_api = gh.api
        wr = {
            "id": run.id,
            "name": run.wf[0],
            "node_id": node("WorkflowRun", run.id),
            "head_branch": run.branch,
            "head_sha": run.head["id"],
            "path": run.wf[1],
            "display_title": run.head["message"].splitlines()[0],
            "run_number": run.number,
            "event": run.event,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": gh.workflows[run.wf]["id"],
            "check_suite_id": run.check_suite,
            "check_suite_node_id": node("CheckSuite", run.check_suite),
            "url": f"{svc_api}/actions/runs/{run.id}",
            "html_url": f"{gh.html}/actions/runs/{run.id}",
            "pull_requests": run.pull_requests,
            "created_at": iso(run.created),
            "updated_at": iso(at),
            "actor": gh.user(run.actor),
            "run_attempt": run.attempt,
            "referenced_workflows": [],
            "run_started_at": iso(run.started or run.created),
            "triggering_actor": gh.user(run.actor),
            "jobs_url": f"{svc_api}/actions/runs/{run.id}/jobs",
            "previous_attempt_url": (
                f"{svc_api}/actions/runs/{run.id}/attempts/{run.attempt - 1}" if run.attempt > 1 else None
            ),
            "workflow_url": f"{svc_api}/actions/workflows/{gh.workflows[run.wf]['id']}",
            "head_commit": {
                "id": run.head["id"],
                "tree_id": run.head["tree_id"],
                "message": run.head["message"],
                "timestamp": run.head["timestamp"],
                "author": {k: run.head["author"][k] for k in ("name", "email")},
                "committer": {k: run.head["committer"][k] for k in ("name", "email")},
            },
            "repository": gh.repo,
            "head_repository": gh.repo,
        }
        self.emit(
            at,
            "github",
            "workflow_run",
            {
                "action": action,
                "workflow_run": wr,
                "workflow": gh.workflow(run.wf),
                "repository": gh.repo,
                "organization": gh.org,
                "sender": gh.user(run.actor),
            },
        )

    def job(
        self,
        gh: Repository,
        st: ServiceState,
        run: Run,
        name: str,
        queued: datetime,
        fail: bool,
        on_start: Callable[[datetime, datetime], None] | None = None,
    ) -> tuple[datetime, datetime]:
        """One job's queued, in_progress and completed webhooks; returns (started, completed)."""
        rng = self.rng
        job_id = self.next_id(st, "job", 10_000_000_000, 19_000_000_000, (100, 90_000))
        started = queued + timedelta(seconds=rng.randint(3, 45))
        steps, t = [], started
        failing = FAILING_STEP[name] if fail else None
        for number, (step, lo, hi) in enumerate(JOB_STEPS[name], 1):
            skipped = failing is not None and failing + 1 < number < len(JOB_STEPS[name])
            took = 0 if skipped else rng.randint(lo, hi)
            conclusion = (
                "skipped" if skipped else "failure" if failing is not None and number == failing + 1 else "success"
            )
            steps.append(
                {
                    "name": step,
                    "status": "completed",
                    "conclusion": conclusion,
                    "number": number,
                    "started_at": iso(t),
                    "completed_at": iso(t + timedelta(seconds=took)),
                }
            )
            t += timedelta(seconds=took)
        completed = t

        def body(action: str, at: datetime) -> dict:
            status = {"queued": "queued", "in_progress": "in_progress", "completed": "completed"}[action]
            shown = (
                steps
                if action == "completed"
                else [{**steps[0], "status": "in_progress", "conclusion": None, "completed_at": None}]
                if action == "in_progress"
                else []
            )
            return {
                "action": action,
                "workflow_job": {
                    "id": job_id,
                    "run_id": run.id,
                    "workflow_name": run.wf[0],
                    "head_branch": run.branch,
                    "run_url": f"{gh.api}/actions/runs/{run.id}",
                    "run_attempt": run.attempt,
                    "node_id": node("CheckRun", job_id),
                    "head_sha": run.head["id"],
                    "url": f"{gh.api}/actions/jobs/{job_id}",
                    "html_url": f"{gh.html}/actions/runs/{run.id}/job/{job_id}",
                    "status": status,
                    "conclusion": ("failure" if fail else "success") if action == "completed" else None,
                    "created_at": iso(queued),
                    "started_at": iso(started if action != "queued" else queued),
                    "completed_at": iso(completed) if action == "completed" else None,
                    "name": name,
                    "steps": shown,
                    "check_run_url": f"{gh.api}/check-runs/{job_id}",
                    "labels": ["ubuntu-latest"],
                    "runner_id": None if action == "queued" else rng.randint(1, 400),
                    "runner_name": None if action == "queued" else f"GitHub Actions {rng.randint(1, 400)}",
                    "runner_group_id": None if action == "queued" else 2,
                    "runner_group_name": None if action == "queued" else "GitHub Actions",
                },
                "repository": gh.repo,
                "organization": gh.org,
                "sender": gh.user(run.actor),
            }

        self.emit(queued, "github", "workflow_job", body("queued", queued))
        self.emit(started, "github", "workflow_job", body("in_progress", started))
        if on_start:
            on_start(started, completed)
        self.emit(completed, "github", "workflow_job", body("completed", completed))
        return started, completed

    def actions_run(
        self,
        gh: Repository,
        st: ServiceState,
        wf: tuple[str, str],
        event: str,
        branch: str,
        head: dict,
        actor: Person,
        at: datetime,
        jobs: tuple[str, ...],
        pull_requests: list,
        plan: str,
        on_deploy: Callable | None = None,
    ) -> tuple[bool, datetime]:
        """A workflow run through its jobs in order; `plan` says what fails. Returns (succeeded, finished)."""
        rng = self.rng
        st.run_number += 1
        run = Run(
            self.next_id(st, "run", 4_000_000_000, 9_000_000_000, (2_000, 400_000)),
            st.run_number,
            wf,
            event,
            branch,
            head,
            actor,
            at,
            pull_requests,
            self.next_id(st, "suite", 10_000_000_000, 19_000_000_000, (100, 90_000)),
        )
        self.workflow_run(gh, run, "requested", at)
        t, i, announced = at, 0, False
        while i < len(jobs):
            name = jobs[i]
            fail = (plan == f"{name}_fail") or (plan == "flaky" and name == "test" and run.attempt == 1)
            hook = (
                (lambda began, ended, fail=fail: on_deploy(began, ended, run, fail))
                if name == "deploy" and on_deploy
                else None
            )
            started, done = self.job(gh, st, run, name, t + timedelta(seconds=rng.randint(1, 6)), fail, hook)
            if not announced:
                run.started = run.started or run.created
                self.workflow_run(gh, run, "in_progress", started)
                announced = True
            t = done + timedelta(seconds=rng.randint(1, 5))
            if fail:
                self.workflow_run(gh, run, "completed", t, "failure")
                if plan != "flaky" or run.attempt > 1:
                    return False, t
                # someone re-runs the failed jobs of the same revision; the flaky test passes
                run.attempt += 1
                t = t + self.lognormal(12, 0.8, 2, 90)
                run.started = t
                self.workflow_run(gh, run, "requested", t)
                announced = False
                continue
            i += 1
        self.workflow_run(gh, run, "completed", t, "success")
        return True, t

    def pull_request_ci(
        self,
        gh: Repository,
        st: ServiceState,
        branch: str,
        head: dict,
        author: Person,
        number: int,
        pr_id: int,
        at: datetime,
    ) -> None:
        """The CI workflow on a pull request's last commit: build and test, no deployment."""
        pr = [
            {
                "url": f"{gh.api}/pulls/{number}",
                "id": pr_id,
                "number": number,
                "head": {
                    "ref": branch,
                    "sha": head["id"],
                    "repo": {"id": gh.repo_id, "url": gh.api, "name": gh.repo["name"]},
                },
                "base": {
                    "ref": "main",
                    "sha": st.head,
                    "repo": {"id": gh.repo_id, "url": gh.api, "name": gh.repo["name"]},
                },
            }
        ]
        plan = "flaky" if self.rng.random() < 0.05 else "ok"
        self.actions_run(
            gh,
            st,
            GITHUB_CI_WORKFLOW,
            "pull_request",
            branch,
            head,
            author,
            at + timedelta(seconds=self.rng.randint(5, 30)),
            ("build", "test"),
            pr,
            plan,
        )

    @staticmethod
    def deployment_body(
        gh: Repository,
        dep_id: int,
        sha: str,
        ref: str,
        payload: dict,
        creator: Person | None,
        created: datetime,
        updated: datetime,
        description: str | None,
    ) -> dict:
        """The `deployment` object GitHub sends in both deployment webhooks."""
        return {
            "url": f"{gh.api}/deployments/{dep_id}",
            "id": dep_id,
            "node_id": node("Deployment", dep_id),
            "sha": sha,
            "ref": ref,
            "task": "deploy",
            "payload": payload,
            "original_environment": "production",
            "environment": "production",
            "description": description,
            "creator": gh.user(creator),
            "created_at": iso(created),
            "updated_at": iso(updated),
            "statuses_url": f"{gh.api}/deployments/{dep_id}/statuses",
            "repository_url": gh.api,
            "transient_environment": False,
            "production_environment": True,
            "performed_via_github_app": None,
        }

    def github_deployment(
        self,
        svc: Service,
        gh: Repository,
        st: ServiceState,
        sha: str,
        ref: str,
        payload: dict,
        creator: Person | None,
        created: datetime,
        finished: datetime,
        state: str,
        run: Run | None,
        description: str | None,
    ) -> Deployment:
        """A `deployment` webhook and its in_progress and final `deployment_status` webhooks."""
        dep_id = self.next_id(st, "deployment", 900_000_000, 2_000_000_000, (1_000, 300_000))
        wf = gh.workflow(run.wf) if run else None
        wr = (
            None
            if run is None
            else {
                "id": run.id,
                "name": run.wf[0],
                "node_id": node("WorkflowRun", run.id),
                "head_branch": run.branch,
                "head_sha": run.head["id"],
                "run_number": run.number,
                "event": run.event,
                "status": "in_progress",
                "conclusion": None,
                "run_attempt": run.attempt,
                "workflow_id": gh.workflows[run.wf]["id"],
                "html_url": f"{gh.html}/actions/runs/{run.id}",
                "created_at": iso(run.created),
                "updated_at": iso(created),
            }
        )
        self.emit(
            created,
            "github",
            "deployment",
            {
                "action": "created",
                "deployment": self.deployment_body(
                    gh, dep_id, sha, ref, payload, creator, created, created, description
                ),
                "workflow": wf,
                "workflow_run": wr,
                "repository": gh.repo,
                "organization": gh.org,
                "sender": gh.user(creator),
            },
        )
        began = created + timedelta(seconds=self.rng.randint(1, 4))
        for status, at in (("in_progress", began), (state, finished)):
            sid = self.next_id(st, "status", 1_000_000_000, 3_000_000_000, (1_000, 300_000))
            log = f"{gh.html}/actions/runs/{run.id}" if run else ""
            self.emit(
                at,
                "github",
                "deployment_status",
                {
                    "action": "created",
                    "deployment_status": {
                        "url": f"{gh.api}/deployments/{dep_id}/statuses/{sid}",
                        "id": sid,
                        "node_id": node("DeploymentStatus", sid),
                        "state": status,
                        "creator": gh.user(creator),
                        "description": {
                            "in_progress": "Deployment started",
                            "success": "Deployment finished",
                            "failure": "Deployment failed",
                        }[status],
                        "environment": "production",
                        "target_url": log,
                        "created_at": iso(at),
                        "updated_at": iso(at),
                        "deployment_url": f"{gh.api}/deployments/{dep_id}",
                        "repository_url": gh.api,
                        "environment_url": f"https://{svc.name}.acme-retail.example",
                        "log_url": log,
                        "performed_via_github_app": None,
                    },
                    "deployment": self.deployment_body(
                        gh, dep_id, sha, ref, payload, creator, created, at, description
                    ),
                    "workflow": wf,
                    "workflow_run": wr,
                    "repository": gh.repo,
                    "organization": gh.org,
                    "sender": gh.user(creator),
                },
            )
        return Deployment(f"github:{gh.full}:deployment:{dep_id}", dep_id, sha, payload.get("version", ""), finished)

    def github_release(
        self,
        svc: Service,
        gh: Repository,
        st: ServiceState,
        head: dict,
        author: Person,
        at: datetime,
        hotfix: bool = False,
    ) -> tuple[Deployment | None, datetime]:
        """A push to main runs the deploy workflow: build, test, deploy (which creates the deployment)."""
        plan = "ok" if hotfix else self.plan()
        version = self.version(st, hotfix)
        result: list[Deployment] = []

        def on_deploy(started: datetime, completed: datetime, run: Run, fail: bool) -> None:
            # the deploy job creates the deployment a few seconds in and reports its end just before the job's
            payload = {"version": version, **({"hotfix": True} if hotfix else {})}
            result.append(
                self.github_deployment(
                    svc,
                    gh,
                    st,
                    head["id"],
                    "main",
                    payload,
                    None,
                    started + timedelta(seconds=self.rng.randint(5, 12)),
                    completed - timedelta(seconds=self.rng.randint(1, 3)),
                    "failure" if fail else "success",
                    run,
                    f"Deploy {version} to production",
                )
            )

        queued = at + timedelta(seconds=self.rng.randint(2, 8))
        ok, finished = self.actions_run(
            gh,
            st,
            GITHUB_SERVICE_WORKFLOW,
            "push",
            "main",
            head,
            author,
            queued,
            ("build", "test", "deploy"),
            [],
            plan,
            on_deploy,
        )
        return (result[0] if ok and result else None), finished
