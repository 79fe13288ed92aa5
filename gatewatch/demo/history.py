"""The demo's history: each service walked through its releases, bad ones and incidents, in time order."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from collector.timeutil import UTC, as_utc, utcnow

from .codepipeline import CodePipeline
from .commits import Commits
from .github import Repository
from .incidents import Incidents
from .organisation import AWS_ACCOUNT, DEFAULT_DAYS, DEFAULT_SEED, DEFAULT_SERVICES, Service, check
from .timeline import Deployment, ServiceState, iso, minutes


class History(Commits, CodePipeline, Incidents):
    """The simulation: walks each service through its releases and records every payload.

    Three teams own N services. Commits reach `main` as GitHub `push` webhooks (most through merged pull
    requests). About half the services release with AWS CodePipeline (EventBridge pipeline, stage and
    action events: Source -> Build -> Test -> Approval -> Prod), the others with GitHub Actions
    (`workflow_run`/`workflow_job` webhooks, `deployment` and `deployment_status` to production).
    The CodePipeline services' Build and Test actions run CodeBuild builds (which wait in CodeBuild's
    queue), their Prod actions CodeDeploy deployments (group `<service>-production`), their repositories
    are mirrored to CodeCommit (each push to main is a `referenceUpdated` of the mirror seconds after
    GitHub's push, so merge times stay GitHub's), and a CloudWatch alarm `<service>-5xx-rate` fires a
    few minutes after a deployment that fails or is rolled back, clearing after the recovery (and now
    and then on its own).
    Some runs fail in build or test (flaky tests pass on a retry of the same revision), some deploys
    fail, a few releases go bad: rolled back, hot-fixed, and often paged on in PagerDuty (v3 webhooks)
    or recorded as generic incident records naming the deployment that caused them.

    Everything is drawn from `random.Random` seeded with the seed and the end date: the same
    arguments give the same payloads, so running the demo twice stores only duplicates.
    """

    def run(self) -> list[tuple[str, str | None, dict]]:
        """Every service's history, then the incidents no release caused; (source, hint, payload) in order."""
        for svc in self.org:
            self.service_history(svc)
        self.alarms()
        self.background_incidents()
        self.open_incidents()
        self.number_incidents()
        self.events.sort(key=lambda e: (e[0], e[1]))
        return [(source, hint, payload) for _, _, source, hint, payload in self.events]

    def service_history(self, svc: Service) -> None:
        """One service's releases over the window, each on its platform; a few go bad."""
        rng = self.rng
        gh = Repository(svc, rng, self.start - timedelta(days=rng.randrange(400, 1500)))
        st = ServiceState(
            head=self.sha(), busy_until=self.start, version=[rng.randrange(1, 4), rng.randrange(0, 40), 0]
        )
        for t in self.release_times(svc):
            if t < st.busy_until:
                t = st.busy_until + minutes(rng.uniform(2, 25))
            if t >= self.end:
                break
            pushed_over = st.head
            head, author = self.changes(svc, gh, st, t)
            if svc.platform == "codepipeline":
                self.codecommit_push(svc, pushed_over, head["id"], t)
                deployment, finished = self.codepipeline_release(svc, st, head, t)
            else:
                deployment, finished = self.github_release(svc, gh, st, head, author, t)
            st.busy_until = finished
            if deployment is None:
                continue
            if rng.random() < 0.07 and deployment.finished < self.end - timedelta(hours=12):
                self.bad_release(svc, gh, st, deployment)
            else:
                st.last_good = deployment

    # -- when a release goes bad --

    def bad_release(self, svc: Service, gh: Repository, st: ServiceState, bad: Deployment) -> None:
        """Users notice; the team rolls back and/or ships a hotfix; often someone is paged."""
        rng = self.rng
        detected = bad.finished + self.lognormal(20, 0.9, 3, 6 * 60)
        r = rng.random()
        mode = "hotfix" if st.last_good is None or r < 0.3 else "rollback_hotfix" if r < 0.45 else "rollback"
        t = detected + self.lognormal(12, 0.6, 3, 60)
        restored = None
        good = st.last_good
        if good is not None and mode.startswith("rollback"):
            engineer = rng.choice(self.people[svc.team])
            if svc.platform == "codepipeline":
                role = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/ReleaseManagers/{engineer.login}"
                t = self.codepipeline_rollback(svc, st, t, "ManualRollback", role)
                self.alarm_after(svc, bad.finished, t)
            else:
                done = t + minutes(rng.uniform(2, 6))
                self.github_deployment(
                    svc,
                    gh,
                    st,
                    good.sha or "",
                    good.version,
                    {"version": good.version, "rollback_of": bad.native},
                    engineer,
                    t,
                    done,
                    "success",
                    None,
                    f"Roll back to {good.version}",
                )
                t = done
            restored = t
        if mode.endswith("hotfix"):
            t += self.lognormal(45, 0.7, 10, 8 * 60)
            fixed = self.hotfix(svc, gh, st, t)
            restored = restored or fixed.finished
            st.last_good = fixed
            t = max(t, fixed.finished)
        st.busy_until = max(st.busy_until, t)
        if rng.random() < 0.65:
            self.deployment_incident(svc, bad, detected, restored or t)

    def hotfix(self, svc: Service, gh: Repository, st: ServiceState, at: datetime) -> Deployment:
        """A quick fix: through the deploy workflow (GitHub) or a hotfix branch and the deploy script."""
        rng = self.rng
        engineer = rng.choice(self.people[svc.team])
        sha = self.sha()
        message = f"hotfix: {self.commit_message().lower()}"
        committed = at - minutes(rng.uniform(3, 20))
        if svc.platform == "github":
            commit = gh.commit(sha, self.sha(), message, committed, engineer, self.files(svc), committer=engineer)
            self.emit(at, "github", "push", gh.push("main", st.head, [commit], engineer))
            st.head = sha
            deployment, finished = self.github_release(svc, gh, st, commit, engineer, at, hotfix=True)
            return deployment or Deployment("", None, sha, "", finished)
        branch = f"hotfix/{message.split(': ', 1)[1].replace(' ', '-')[:32]}"
        commit = gh.commit(sha, self.sha(), message, committed, engineer, self.files(svc), committer=engineer)
        self.emit(at, "github", "push", gh.push(branch, st.head, [commit], engineer, created=True))
        started = at + minutes(rng.uniform(2, 6))
        finished = started + minutes(rng.uniform(3, 8))
        version = self.version(st, hotfix=True)
        record_id = f"deploy-{svc.name}-{finished:%Y%m%d%H%M}"
        self.emit(
            finished,
            "generic",
            None,
            {
                "type": "deployment",
                "id": record_id,
                "service": svc.name,
                "environment": "production",
                "status": "success",
                "started_at": iso(started),
                "finished_at": iso(finished),
                "commits": [sha],
                "version": version,
                "hotfix": True,
                "team": svc.team,
            },
        )
        return Deployment(record_id, record_id, sha, version, finished)


def end_of(end: date | datetime | None) -> datetime:
    """When the history ends: 00:00 UTC of `end` (a date; default today), or `end` itself (a datetime)."""
    if end is None:
        now = utcnow()
        return datetime(now.year, now.month, now.day, tzinfo=UTC)
    if isinstance(end, datetime):
        return as_utc(end)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def generate(
    services: int = DEFAULT_SERVICES,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    end: date | datetime | None = None,
) -> list[tuple[str, str | None, dict]]:
    """The demo's payloads in time order: (source, hint, payload), hint being the GitHub event name."""
    check(services, days)
    return History(services, days, seed, end_of(end)).run()
