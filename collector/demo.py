"""A demo organisation's delivery history, built as the payloads its tools would really send and fed
through the one ingest path, so the demo exercises exactly what a user's events go through.

Three teams own N services. Commits reach `main` as GitHub `push` webhooks (most through merged pull
requests). About half the services release with AWS CodePipeline (EventBridge pipeline, stage and
action events: Source -> Build -> Test -> Approval -> Prod), the others with GitHub Actions
(`workflow_run`/`workflow_job` webhooks, `deployment` and `deployment_status` to production).
Some runs fail in build or test (flaky tests pass on a retry of the same revision), some deploys
fail, a few releases go bad: rolled back, hot-fixed, and often paged on in PagerDuty (v3 webhooks)
or recorded as generic incident records naming the deployment that caused them.

Everything is drawn from `random.Random` seeded with the seed and the end date: the same
arguments give the same payloads, so running the demo twice stores only duplicates.
"""
from __future__ import annotations

import base64
import json
import math
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from sqlalchemy import Engine

from .config import Config
from .errors import ConfigError
from .ingest import Envelope, IngestSummary, ingest
from .timeutil import UTC, as_utc, utcnow

DEFAULT_SERVICES, DEFAULT_DAYS, DEFAULT_SEED = 8, 90, 7
MAX_SERVICES, MAX_DAYS = 60, 730
ORG = "acme-retail"
ORG_ID = 73104522
AWS_ACCOUNT = "483920175634"
AWS_REGION = "eu-west-1"
PD_DOMAIN = "acme-retail.pagerduty.com"
DEMO_FILES = "gatewatch-demo"  # the demo's SLO files and gate policies, beside its gatewatch.yaml

# name, owning team, releases per working day (several a day .. a few a week)
CATALOGUE = (
    ("checkout", "payments", 3.0), ("search", "discovery", 4.5), ("identity", "platform", 0.4),
    ("payments", "payments", 1.2), ("catalog", "discovery", 0.6), ("notifications", "platform", 2.0),
    ("recommendations", "discovery", 1.5), ("billing", "payments", 0.5), ("inventory", "platform", 1.0),
    ("shipping", "payments", 0.8), ("pricing", "discovery", 2.5), ("gateway", "platform", 0.7),
)
# team -> (UTC offset in minutes of its working hours, PagerDuty team name, engineers)
TEAMS = {
    "payments": (60, "Payments", ("Amara Okafor", "Lukas Schmidt", "Sofia Rossi", "Jonas Berg",
                                  "Elif Yilmaz", "Marta Nowak", "Pieter de Vries")),
    "discovery": (-300, "Discovery", ("Maya Patel", "Diego Alvarez", "Hannah Kim", "Tom Becker",
                                      "Grace Liu", "Samuel Adeyemi", "Nora Walsh")),
    "platform": (330, "Platform", ("Arjun Mehta", "Priya Nair", "Chen Wei", "Fatima Khan",
                                   "Ravi Kumar", "Ines Duarte", "Oskar Lind")),
}

GITHUB_SERVICE_WORKFLOW = ("Build and deploy", ".github/workflows/deploy.yml")
GITHUB_CI_WORKFLOW = ("CI", ".github/workflows/ci.yml")
VERBS = ("Fix", "Add", "Refactor", "Improve", "Handle", "Cache", "Validate", "Log", "Speed up", "Remove",
         "Retry", "Bump")
THINGS = ("timeout handling", "pagination", "input validation", "retry on 503", "metrics labels",
          "error messages", "feature flag", "N+1 query", "connection pool size", "dependency versions",
          "null handling", "rate limiting", "idempotency keys", "tracing spans", "config loading",
          "health check", "currency rounding", "search ranking", "cache invalidation", "batch size")
INCIDENT_TITLES = ("Elevated 5xx rate on {svc}", "{svc} p99 latency above SLO",
                   "{svc}: error budget burn rate critical", "Spike in failed requests to {svc}",
                   "{svc} pods crash-looping")
BACKGROUND_TITLES = ("{svc}: database CPU above 90%", "{svc}: upstream dependency timing out",
                     "{svc}: disk almost full on worker nodes", "{svc}: certificate expires in 7 days")


# --- the organisation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """An engineer: GitHub login and id, git identity, PagerDuty user id, local UTC offset."""

    name: str
    login: str
    uid: int
    pd_id: str
    offset: int


@dataclass(frozen=True)
class Service:
    """A service of the demo organisation and how it is released."""

    name: str
    team: str
    platform: str  # "codepipeline" or "github"
    repository: str
    pipeline: str
    rate: float
    pagerduty_id: str
    pagerduty_name: str
    offset: int


def _check(services: int, days: int) -> None:
    if not isinstance(services, int) or not 1 <= services <= MAX_SERVICES:
        raise ConfigError(f"--services: expected a number of services from 1 to {MAX_SERVICES}, "
                          f"got {services!r}")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"--days: expected a number of days from 1 to {MAX_DAYS}, got {days!r}")


def _pd_id(rng: random.Random, prefix: str = "P", length: int = 7) -> str:
    return prefix + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(length - 1))


def organisation(services: int = DEFAULT_SERVICES, seed: int = DEFAULT_SEED) -> list[Service]:
    """The demo's services: names and teams from a fixed catalogue, platforms alternating."""
    _check(services, 1)
    rng = random.Random(f"gatewatch-demo-org:{seed}")
    out = []
    for i in range(services):
        base, team, rate = CATALOGUE[i % len(CATALOGUE)]
        lap = i // len(CATALOGUE)
        name = base if lap == 0 else f"{base}-{lap + 1}"
        if lap:
            rate = round(rate * rng.uniform(0.5, 1.5), 2)
        platform = "codepipeline" if i % 2 == 0 else "github"
        out.append(Service(
            name=name, team=team, platform=platform, repository=f"{ORG}/{name}-service",
            pipeline=f"{name}-pipeline" if platform == "codepipeline" else GITHUB_SERVICE_WORKFLOW[0],
            rate=rate, pagerduty_id=_pd_id(rng),
            pagerduty_name=f"{name.replace('-', ' ').title()} (production)",
            offset=TEAMS[team][0]))
    return out


def demo_config_mapping(services: int = DEFAULT_SERVICES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The gatewatch.yaml the demo needs: its service and team maps (CodePipeline events and PagerDuty
    webhooks name no team), the folders of its SLO files and gate policies, and runbook links."""
    org = organisation(services, seed)
    return {
        "services": {
            "pipelines": {s.pipeline: s.name for s in org if s.platform == "codepipeline"},
            "repositories": {s.repository: s.name for s in org},
            "pagerduty": {s.pagerduty_id: s.name for s in org},
        },
        "teams": {s.name: s.team for s in org},
        "slos": f"{DEMO_FILES}/slos",
        "gates": {"policies": f"{DEMO_FILES}/gates"},
        "runbooks": {s.name: f"https://runbooks.example.com/{s.name}" for s in org},
    }


def _people(seed: int) -> dict[str, list[Person]]:
    rng = random.Random(f"gatewatch-demo-people:{seed}")
    people: dict[str, list[Person]] = {}
    for team, (offset, _, names) in TEAMS.items():
        people[team] = [Person(n, n.lower().replace(" ", "-"), rng.randrange(10_000_000, 160_000_000),
                               _pd_id(rng), offset) for n in names]
    return people


# --- small helpers ---------------------------------------------------------------------------------

def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(t: datetime) -> str:
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _iso_local(t: datetime, offset: int) -> str:
    """A git commit timestamp in the committer's own zone, as GitHub's push payloads show it."""
    return t.astimezone(UTC).astimezone(_zone(offset)).isoformat(timespec="seconds")


def _zone(offset: int) -> timezone:
    return timezone(timedelta(minutes=offset))


def _node(kind: str, number: int) -> str:
    """GitHub's legacy global node id: base64 of '0<len>:<Type><id>'."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid(rng: random.Random, at: datetime) -> str:
    """A ULID as PagerDuty uses for webhook event ids: 48-bit milliseconds and 80 random bits."""
    n = (int(at.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# --- payload builders ------------------------------------------------------------------------------

class _GitHub:
    """GitHub webhook bodies for one repository (trimmed of the many `*_url` fields, shapes kept)."""

    def __init__(self, svc: Service, rng: random.Random, created: datetime):
        self.svc = svc
        self.full = svc.repository
        self.repo_id = rng.randrange(300_000_000, 800_000_000)
        self.api = f"https://api.github.com/repos/{self.full}"
        self.html = f"https://github.com/{self.full}"
        owner = {"login": ORG, "id": ORG_ID, "node_id": _node("Organization", ORG_ID),
                 "html_url": f"https://github.com/{ORG}", "type": "Organization", "site_admin": False}
        self.org = {"login": ORG, "id": ORG_ID, "node_id": _node("Organization", ORG_ID),
                    "url": f"https://api.github.com/orgs/{ORG}", "description": "Acme Retail engineering"}
        name = self.full.split("/", 1)[1]
        common = {"id": self.repo_id, "node_id": _node("Repository", self.repo_id), "name": name,
                  "full_name": self.full, "private": True, "owner": owner, "html_url": self.html,
                  "description": f"The {svc.name} service", "fork": False, "url": self.api}
        issues = rng.randrange(0, 40)
        tail = {"git_url": f"git://github.com/{self.full}.git", "ssh_url": f"git@github.com:{self.full}.git",
                "clone_url": f"{self.html}.git", "homepage": None, "size": rng.randrange(2_000, 90_000),
                "stargazers_count": 0, "watchers_count": 0, "language": rng.choice(("Python", "Go", "TypeScript",
                                                                                    "Kotlin")),
                "has_issues": True, "has_projects": False, "has_downloads": True, "has_wiki": False,
                "has_pages": False, "forks_count": 0, "archived": False, "disabled": False,
                "open_issues_count": issues, "license": None, "is_template": False, "topics": [], "forks": 0,
                "open_issues": issues, "watchers": 0, "default_branch": "main", "visibility": "private",
                "web_commit_signoff_required": False, "custom_properties": {}}
        self.repo = {**common, "created_at": _iso(created), "updated_at": _iso(created),
                     "pushed_at": _iso(created), **tail}
        # push payloads carry the repository's times as epoch seconds (a GitHub quirk kept on purpose)
        self.repo_push = {**common, "created_at": int(created.timestamp()), "updated_at": _iso(created),
                          "pushed_at": int(created.timestamp()), **tail, "stargazers": 0,
                          "master_branch": "main", "organization": ORG}
        self.workflows = {wf: {"id": rng.randrange(20_000_000, 90_000_000)} for wf in
                          (GITHUB_SERVICE_WORKFLOW, GITHUB_CI_WORKFLOW)}

    @staticmethod
    def user(p: Person | None) -> dict:
        if p is None:
            return {"login": "github-actions[bot]", "id": 41898282, "node_id": "MDM6Qm90NDE4OTgyODI=",
                    "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4", "gravatar_id": "",
                    "url": "https://api.github.com/users/github-actions%5Bbot%5D",
                    "html_url": "https://github.com/apps/github-actions", "type": "Bot", "site_admin": False}
        return {"login": p.login, "id": p.uid, "node_id": _node("User", p.uid),
                "avatar_url": f"https://avatars.githubusercontent.com/u/{p.uid}?v=4", "gravatar_id": "",
                "url": f"https://api.github.com/users/{p.login}", "html_url": f"https://github.com/{p.login}",
                "type": "User", "site_admin": False}

    def commit(self, sha: str, tree: str, message: str, at: datetime, author: Person, files: list[str],
               committer: Person | None = None) -> dict:
        ident = {"name": author.name, "email": f"{author.login}@acme-retail.example", "username": author.login}
        by = ({"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"} if committer is None
              else ident)
        return {"id": sha, "tree_id": tree, "distinct": True, "message": message,
                "timestamp": _iso_local(at, author.offset), "url": f"{self.html}/commit/{sha}",
                "author": ident, "committer": by, "added": [], "removed": [], "modified": files}

    def push(self, branch: str, before: str, commits: list[dict], pusher: Person,
             created: bool = False) -> dict:
        after = commits[-1]["id"]
        return {"ref": f"refs/heads/{branch}", "before": before, "after": after, "repository": self.repo_push,
                "pusher": {"name": pusher.login, "email": f"{pusher.login}@acme-retail.example"},
                "organization": self.org, "sender": self.user(pusher), "created": created, "deleted": False,
                "forced": False, "base_ref": None,
                "compare": f"{self.html}/compare/{before[:12]}...{after[:12]}",
                "commits": commits, "head_commit": commits[-1]}

    def pull_request_closed(self, number: int, pr_id: int, title: str, author: Person, merger: Person,
                            branch: str, head: str, base: str, merge_sha: str, created: datetime,
                            merged: datetime, commits: int, rng: random.Random) -> dict:
        url = f"{self.api}/pulls/{number}"
        pr = {"url": url, "id": pr_id, "node_id": _node("PullRequest", pr_id),
              "html_url": f"{self.html}/pull/{number}", "number": number, "state": "closed", "locked": False,
              "title": title, "user": self.user(author),
              "body": f"{title}.\n\nTested locally and in staging.", "created_at": _iso(created),
              "updated_at": _iso(merged), "closed_at": _iso(merged), "merged_at": _iso(merged),
              "merge_commit_sha": merge_sha, "assignee": None, "assignees": [],
              "requested_reviewers": [], "requested_teams": [], "labels": [], "milestone": None, "draft": False,
              "head": {"label": f"{ORG}:{branch}", "ref": branch, "sha": head, "user": self.user(author),
                       "repo": self.repo},
              "base": {"label": f"{ORG}:main", "ref": "main", "sha": base, "user": self.org, "repo": self.repo},
              "author_association": "MEMBER", "auto_merge": None, "active_lock_reason": None, "merged": True,
              "mergeable": None, "rebaseable": None, "mergeable_state": "unknown",
              "merged_by": self.user(merger),
              "comments": rng.randrange(0, 4), "review_comments": rng.randrange(0, 9),
              "maintainer_can_modify": False, "commits": commits, "additions": rng.randrange(3, 400),
              "deletions": rng.randrange(0, 150), "changed_files": rng.randrange(1, 12),
              "_links": {"self": {"href": url}, "html": {"href": f"{self.html}/pull/{number}"},
                         "issue": {"href": f"{self.api}/issues/{number}"},
                         "comments": {"href": f"{self.api}/issues/{number}/comments"},
                         "commits": {"href": f"{url}/commits"},
                         "statuses": {"href": f"{self.api}/statuses/{head}"}}}
        return {"action": "closed", "number": number, "pull_request": pr, "repository": self.repo,
                "organization": self.org, "sender": self.user(merger)}

    def workflow(self, wf: tuple[str, str]) -> dict:
        wid = self.workflows[wf]["id"]
        return {"id": wid, "node_id": _node("Workflow", wid), "name": wf[0], "path": wf[1], "state": "active",
                "created_at": self.repo["created_at"], "updated_at": self.repo["created_at"],
                "url": f"{self.api}/actions/workflows/{wid}", "html_url": f"{self.html}/blob/main/{wf[1]}",
                "badge_url": f"{self.html}/workflows/{wf[0].replace(' ', '%20')}/badge.svg"}


@dataclass
class _Run:
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


@dataclass
class _Deployment:
    """A production deployment the simulation remembers (to roll back to, or to blame)."""

    id: str
    native: Any
    sha: str | None
    version: str
    finished: datetime


@dataclass
class _State:
    """One service's position in the simulation."""

    head: str
    busy_until: datetime
    version: list[int]
    last_good: _Deployment | None = None
    pr_number: int = 0
    run_number: int = 0
    ids: dict[str, int] = field(default_factory=dict)


JOB_STEPS = {
    "build": (("Set up job", 2, 6), ("Checkout", 2, 8), ("Set up toolchain", 8, 40),
              ("Build and push image", 60, 300), ("Complete job", 1, 2)),
    "test": (("Set up job", 2, 6), ("Checkout", 2, 8), ("Run unit tests", 60, 240),
             ("Run integration tests", 60, 360), ("Complete job", 1, 2)),
    "deploy": (("Set up job", 2, 6), ("Configure AWS credentials", 2, 5), ("Deploy to production", 120, 420),
               ("Smoke test", 20, 90), ("Complete job", 1, 2)),
}
FAILING_STEP = {"build": 3, "test": 3, "deploy": 2}  # index into JOB_STEPS


class _History:
    """The simulation: walks each service through its releases and records every payload."""

    def __init__(self, services: int, days: int, seed: int, end: datetime):
        self.org = organisation(services, seed)
        self.people = _people(seed)
        self.end = end
        self.start = end - timedelta(days=days)
        self.rng = random.Random(f"gatewatch-demo:{seed}:{end.isoformat()}")
        self.events: list[tuple[datetime, int, str, str | None, dict]] = []
        self.pd_incidents: list[tuple[datetime, list[dict]]] = []
        self.generic_incidents: list[tuple[datetime, dict]] = []

    # -- recording --

    def emit(self, at: datetime, source: str, hint: str | None, payload: dict) -> None:
        if at < self.end:
            self.events.append((at, len(self.events), source, hint, payload))

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def next_id(self, st: _State, kind: str, lo: int, hi: int, step: tuple[int, int] = (1, 50)) -> int:
        if kind not in st.ids:
            st.ids[kind] = self.rng.randrange(lo, hi)
        st.ids[kind] += self.rng.randint(*step)
        return st.ids[kind]

    def lognormal(self, median_minutes: float, sigma: float, lo: float, hi: float) -> timedelta:
        return _minutes(min(max(self.rng.lognormvariate(math.log(median_minutes), sigma), lo), hi))

    # -- calendar --

    def working(self, t: datetime, offset: int) -> datetime:
        """`t`, or the next working-hours moment of a team in that zone (approvals wait for people)."""
        local = t.astimezone(_zone(offset))
        if local.weekday() < 5 and 8 <= local.hour < 19:
            return t
        day = local.date() if local.hour < 8 else local.date() + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        morning = datetime(day.year, day.month, day.day, 9, tzinfo=_zone(offset))
        return morning.astimezone(UTC) + self.lognormal(20, 0.8, 2, 120)

    def release_times(self, svc: Service) -> list[datetime]:
        """When a service's changes reach main: Poisson per day, in the team's working hours."""
        zone = _zone(svc.offset)
        day = self.start.astimezone(zone).date()
        last = self.end.astimezone(zone).date()
        times = []
        while day <= last:
            factor = 1.0 if day.weekday() < 5 else 0.08
            for _ in range(_poisson(self.rng, svc.rate * factor)):
                local = (datetime(day.year, day.month, day.day, 9, tzinfo=zone)
                         + _minutes(self.rng.uniform(0, 540)))
                t = local.astimezone(UTC)
                if self.start <= t < self.end:
                    times.append(t)
            day += timedelta(days=1)
        return sorted(times)

    # -- the whole history --

    def run(self) -> list[tuple[str, str | None, dict]]:
        for svc in self.org:
            self.service_history(svc)
        self.background_incidents()
        self.open_incidents()
        self.number_incidents()
        self.events.sort(key=lambda e: (e[0], e[1]))
        return [(source, hint, payload) for _, _, source, hint, payload in self.events]

    def service_history(self, svc: Service) -> None:
        rng = self.rng
        gh = _GitHub(svc, rng, self.start - timedelta(days=rng.randrange(400, 1500)))
        st = _State(head=self.sha(), busy_until=self.start,
                    version=[rng.randrange(1, 4), rng.randrange(0, 40), 0])
        for t in self.release_times(svc):
            if t < st.busy_until:
                t = st.busy_until + _minutes(rng.uniform(2, 25))
            if t >= self.end:
                break
            head, author = self.changes(svc, gh, st, t)
            if svc.platform == "codepipeline":
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

    # -- commits --

    def commit_message(self) -> str:
        return f"{self.rng.choice(VERBS)} {self.rng.choice(THINGS)}"

    def files(self, svc: Service) -> list[str]:
        pool = ("handlers.py", "models.py", "client.py", "settings.py", "api/routes.py", "jobs/worker.py",
                "tests/test_api.py", "tests/test_models.py")
        return sorted(self.rng.sample([f"src/{svc.name.replace('-', '_')}/{f}" for f in pool],
                                      self.rng.randint(1, 3)))

    def changes(self, svc: Service, gh: _GitHub, st: _State, at: datetime) -> tuple[dict, Person]:
        """Commits reach main at `at`: a merged pull request (mostly) or a direct push."""
        rng = self.rng
        team = self.people[svc.team]
        author = rng.choice(team)
        count = 1 + min(int(rng.expovariate(0.8)), 5)
        age = self.lognormal(8 * 60, 1.1, 20, 14 * 24 * 60)
        first = at - age
        span = max((at - first).total_seconds() - 180, 1)
        stamps = sorted(first + timedelta(seconds=rng.uniform(0, span)) for _ in range(count - 1))
        stamps.insert(0, first)
        title = self.commit_message()
        commits, parent = [], st.head
        for i, stamp in enumerate(stamps):
            sha = self.sha()
            msg = title if i == 0 else self.commit_message()
            commits.append(gh.commit(sha, self.sha(), msg, stamp, author, self.files(svc), committer=author))
            parent = sha
        if rng.random() < 0.2:  # a direct push to main
            self.emit(at, "github", "push", gh.push("main", st.head, commits, author))
            st.head = commits[-1]["id"]
            return commits[-1], author
        st.pr_number = st.pr_number + rng.randint(1, 3) if st.pr_number else rng.randrange(120, 900)
        number = st.pr_number
        branch = f"{author.login.split('-')[0]}/{title.lower().replace(' ', '-')[:40]}"
        opened = min(stamps[-1] + _minutes(rng.uniform(2, 60)), at - _minutes(1))
        merger = rng.choice([p for p in team if p != author])
        pr_id = self.next_id(st, "pr", 900_000_000, 1_900_000_000, (5_000, 900_000))
        if svc.platform == "github" and (at - max(opened, stamps[-1])) > timedelta(minutes=20):
            self.pull_request_ci(gh, st, branch, commits[-1], author, number, pr_id, max(opened, stamps[-1]))
        merge_sha = self.sha()
        merge = gh.commit(merge_sha, self.sha(), f"Merge pull request #{number} from {ORG}/{branch}\n\n{title}",
                          at, merger, [], committer=None)
        self.emit(at, "github", "pull_request", gh.pull_request_closed(
            number, pr_id, title, author, merger, branch, parent, st.head, merge_sha, opened, at, count, rng))
        self.emit(at + timedelta(seconds=rng.randint(1, 4)), "github", "push",
                  gh.push("main", st.head, [*commits, merge], merger))
        st.head = merge_sha
        return merge, merger

    # -- GitHub Actions --

    def workflow_run(self, gh: _GitHub, run: _Run, action: str, at: datetime,
                     conclusion: str | None = None) -> None:
        status = {"requested": "queued", "in_progress": "in_progress", "completed": "completed"}[action]
        svc_api = gh.api
        wr = {"id": run.id, "name": run.wf[0], "node_id": _node("WorkflowRun", run.id), "head_branch": run.branch,
              "head_sha": run.head["id"], "path": run.wf[1], "display_title": run.head["message"].splitlines()[0],
              "run_number": run.number, "event": run.event, "status": status, "conclusion": conclusion,
              "workflow_id": gh.workflows[run.wf]["id"], "check_suite_id": run.check_suite,
              "check_suite_node_id": _node("CheckSuite", run.check_suite),
              "url": f"{svc_api}/actions/runs/{run.id}",
              "html_url": f"{gh.html}/actions/runs/{run.id}", "pull_requests": run.pull_requests,
              "created_at": _iso(run.created), "updated_at": _iso(at), "actor": gh.user(run.actor),
              "run_attempt": run.attempt, "referenced_workflows": [],
              "run_started_at": _iso(run.started or run.created), "triggering_actor": gh.user(run.actor),
              "jobs_url": f"{svc_api}/actions/runs/{run.id}/jobs",
              "previous_attempt_url": (f"{svc_api}/actions/runs/{run.id}/attempts/{run.attempt - 1}"
                                       if run.attempt > 1 else None),
              "workflow_url": f"{svc_api}/actions/workflows/{gh.workflows[run.wf]['id']}",
              "head_commit": {"id": run.head["id"], "tree_id": run.head["tree_id"],
                              "message": run.head["message"], "timestamp": run.head["timestamp"],
                              "author": {k: run.head["author"][k] for k in ("name", "email")},
                              "committer": {k: run.head["committer"][k] for k in ("name", "email")}},
              "repository": gh.repo, "head_repository": gh.repo}
        self.emit(at, "github", "workflow_run", {
            "action": action, "workflow_run": wr, "workflow": gh.workflow(run.wf), "repository": gh.repo,
            "organization": gh.org, "sender": gh.user(run.actor)})

    def job(self, gh: _GitHub, st: _State, run: _Run, name: str, queued: datetime, fail: bool,
            on_start: Callable[[datetime, datetime], None] | None = None) -> tuple[datetime, datetime]:
        """One job's queued, in_progress and completed webhooks; returns (started, completed)."""
        rng = self.rng
        job_id = self.next_id(st, "job", 10_000_000_000, 19_000_000_000, (100, 90_000))
        started = queued + timedelta(seconds=rng.randint(3, 45))
        steps, t = [], started
        failing = FAILING_STEP[name] if fail else None
        for number, (step, lo, hi) in enumerate(JOB_STEPS[name], 1):
            skipped = failing is not None and failing + 1 < number < len(JOB_STEPS[name])
            took = 0 if skipped else rng.randint(lo, hi)
            conclusion = ("skipped" if skipped else
                          "failure" if failing is not None and number == failing + 1 else "success")
            steps.append({"name": step, "status": "completed", "conclusion": conclusion, "number": number,
                          "started_at": _iso(t), "completed_at": _iso(t + timedelta(seconds=took))})
            t += timedelta(seconds=took)
        completed = t

        def body(action: str, at: datetime) -> dict:
            status = {"queued": "queued", "in_progress": "in_progress", "completed": "completed"}[action]
            shown = (steps if action == "completed" else
                     [{**steps[0], "status": "in_progress", "conclusion": None, "completed_at": None}]
                     if action == "in_progress" else [])
            return {"action": action, "workflow_job": {
                "id": job_id, "run_id": run.id, "workflow_name": run.wf[0], "head_branch": run.branch,
                "run_url": f"{gh.api}/actions/runs/{run.id}", "run_attempt": run.attempt,
                "node_id": _node("CheckRun", job_id), "head_sha": run.head["id"],
                "url": f"{gh.api}/actions/jobs/{job_id}",
                "html_url": f"{gh.html}/actions/runs/{run.id}/job/{job_id}", "status": status,
                "conclusion": ("failure" if fail else "success") if action == "completed" else None,
                "created_at": _iso(queued), "started_at": _iso(started if action != "queued" else queued),
                "completed_at": _iso(completed) if action == "completed" else None, "name": name, "steps": shown,
                "check_run_url": f"{gh.api}/check-runs/{job_id}", "labels": ["ubuntu-latest"],
                "runner_id": None if action == "queued" else rng.randint(1, 400),
                "runner_name": None if action == "queued" else f"GitHub Actions {rng.randint(1, 400)}",
                "runner_group_id": None if action == "queued" else 2,
                "runner_group_name": None if action == "queued" else "GitHub Actions"},
                "repository": gh.repo, "organization": gh.org, "sender": gh.user(run.actor)}

        self.emit(queued, "github", "workflow_job", body("queued", queued))
        self.emit(started, "github", "workflow_job", body("in_progress", started))
        if on_start:
            on_start(started, completed)
        self.emit(completed, "github", "workflow_job", body("completed", completed))
        return started, completed

    def actions_run(self, gh: _GitHub, st: _State, wf: tuple[str, str], event: str, branch: str,
                    head: dict, actor: Person, at: datetime, jobs: tuple[str, ...], pull_requests: list,
                    plan: str, on_deploy: Callable | None = None) -> tuple[bool, datetime]:
        """A workflow run through its jobs in order; `plan` says what fails. Returns (succeeded, finished)."""
        rng = self.rng
        st.run_number += 1
        run = _Run(self.next_id(st, "run", 4_000_000_000, 9_000_000_000, (2_000, 400_000)), st.run_number, wf,
                   event, branch, head, actor, at, pull_requests,
                   self.next_id(st, "suite", 10_000_000_000, 19_000_000_000, (100, 90_000)))
        self.workflow_run(gh, run, "requested", at)
        t, i, announced = at, 0, False
        while i < len(jobs):
            name = jobs[i]
            fail = (plan == f"{name}_fail") or (plan == "flaky" and name == "test" and run.attempt == 1)
            hook = ((lambda began, ended: on_deploy(began, ended, run, fail)) if name == "deploy" and on_deploy
                    else None)
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

    def pull_request_ci(self, gh: _GitHub, st: _State, branch: str, head: dict, author: Person,
                        number: int, pr_id: int, at: datetime) -> None:
        """The CI workflow on a pull request's last commit: build and test, no deployment."""
        pr = [{"url": f"{gh.api}/pulls/{number}", "id": pr_id, "number": number,
               "head": {"ref": branch, "sha": head["id"], "repo": {"id": gh.repo_id, "url": gh.api,
                                                                  "name": gh.repo["name"]}},
               "base": {"ref": "main", "sha": st.head, "repo": {"id": gh.repo_id, "url": gh.api,
                                                                "name": gh.repo["name"]}}}]
        plan = "flaky" if self.rng.random() < 0.05 else "ok"
        self.actions_run(gh, st, GITHUB_CI_WORKFLOW, "pull_request", branch, head, author,
                         at + timedelta(seconds=self.rng.randint(5, 30)), ("build", "test"), pr, plan)

    @staticmethod
    def deployment_body(gh: _GitHub, dep_id: int, sha: str, ref: str, payload: dict, creator: Person | None,
                        created: datetime, updated: datetime, description: str | None) -> dict:
        """The `deployment` object GitHub sends in both deployment webhooks."""
        return {"url": f"{gh.api}/deployments/{dep_id}", "id": dep_id, "node_id": _node("Deployment", dep_id),
                "sha": sha, "ref": ref, "task": "deploy", "payload": payload,
                "original_environment": "production", "environment": "production", "description": description,
                "creator": gh.user(creator),
                "created_at": _iso(created), "updated_at": _iso(updated),
                "statuses_url": f"{gh.api}/deployments/{dep_id}/statuses", "repository_url": gh.api,
                "transient_environment": False, "production_environment": True,
                "performed_via_github_app": None}

    def github_deployment(self, svc: Service, gh: _GitHub, st: _State, sha: str, ref: str, payload: dict,
                          creator: Person | None, created: datetime, finished: datetime, state: str,
                          run: _Run | None, description: str | None) -> _Deployment:
        """A `deployment` webhook and its in_progress and final `deployment_status` webhooks."""
        dep_id = self.next_id(st, "deployment", 900_000_000, 2_000_000_000, (1_000, 300_000))
        wf = gh.workflow(run.wf) if run else None
        wr = None if run is None else {
            "id": run.id, "name": run.wf[0], "node_id": _node("WorkflowRun", run.id), "head_branch": run.branch,
            "head_sha": run.head["id"], "run_number": run.number, "event": run.event, "status": "in_progress",
            "conclusion": None, "run_attempt": run.attempt, "workflow_id": gh.workflows[run.wf]["id"],
            "html_url": f"{gh.html}/actions/runs/{run.id}", "created_at": _iso(run.created),
            "updated_at": _iso(created)}
        self.emit(created, "github", "deployment", {
            "action": "created",
            "deployment": self.deployment_body(gh, dep_id, sha, ref, payload, creator, created, created,
                                               description),
            "workflow": wf, "workflow_run": wr, "repository": gh.repo, "organization": gh.org,
            "sender": gh.user(creator)})
        began = created + timedelta(seconds=self.rng.randint(1, 4))
        for status, at in (("in_progress", began), (state, finished)):
            sid = self.next_id(st, "status", 1_000_000_000, 3_000_000_000, (1_000, 300_000))
            log = f"{gh.html}/actions/runs/{run.id}" if run else ""
            self.emit(at, "github", "deployment_status", {
                "action": "created",
                "deployment_status": {
                    "url": f"{gh.api}/deployments/{dep_id}/statuses/{sid}", "id": sid,
                    "node_id": _node("DeploymentStatus", sid), "state": status, "creator": gh.user(creator),
                    "description": {"in_progress": "Deployment started", "success": "Deployment finished",
                                    "failure": "Deployment failed"}[status],
                    "environment": "production", "target_url": log, "created_at": _iso(at),
                    "updated_at": _iso(at),
                    "deployment_url": f"{gh.api}/deployments/{dep_id}", "repository_url": gh.api,
                    "environment_url": f"https://{svc.name}.acme-retail.example", "log_url": log,
                    "performed_via_github_app": None},
                "deployment": self.deployment_body(gh, dep_id, sha, ref, payload, creator, created, at,
                                                   description),
                "workflow": wf, "workflow_run": wr, "repository": gh.repo, "organization": gh.org,
                "sender": gh.user(creator)})
        return _Deployment(f"github:{gh.full}:deployment:{dep_id}", dep_id, sha, payload.get("version", ""),
                           finished)

    def version(self, st: _State, hotfix: bool = False) -> str:
        if hotfix:
            st.version[2] += 1
        else:
            st.version[1:] = [st.version[1] + 1, 0]
        return "v" + ".".join(map(str, st.version))

    def plan(self) -> str:
        """What goes wrong in a release run: mostly nothing; flaky tests; real build/test/deploy failures."""
        r = self.rng.random()
        for plan, p in (("flaky", 0.07), ("build_fail", 0.025), ("test_fail", 0.03), ("deploy_fail", 0.03)):
            if r < p:
                return plan
            r -= p
        return "ok"

    def github_release(self, svc: Service, gh: _GitHub, st: _State, head: dict, author: Person, at: datetime,
                       hotfix: bool = False) -> tuple[_Deployment | None, datetime]:
        """A push to main runs the deploy workflow: build, test, deploy (which creates the deployment)."""
        plan = "ok" if hotfix else self.plan()
        version = self.version(st, hotfix)
        result: list[_Deployment] = []

        def on_deploy(started: datetime, completed: datetime, run: _Run, fail: bool) -> None:
            # the deploy job creates the deployment a few seconds in and reports its end just before the job's
            payload = {"version": version, **({"hotfix": True} if hotfix else {})}
            result.append(self.github_deployment(
                svc, gh, st, head["id"], "main", payload, None,
                started + timedelta(seconds=self.rng.randint(5, 12)),
                completed - timedelta(seconds=self.rng.randint(1, 3)), "failure" if fail else "success", run,
                f"Deploy {version} to production"))

        queued = at + timedelta(seconds=self.rng.randint(2, 8))
        ok, finished = self.actions_run(gh, st, GITHUB_SERVICE_WORKFLOW, "push", "main", head, author, queued,
                                        ("build", "test", "deploy"), [], plan, on_deploy)
        return (result[0] if ok and result else None), finished

    # -- CodePipeline --

    def codepipeline_event(self, svc: Service, execution: str, started: datetime, trigger: dict, attempt: int,
                           at: datetime, state: str, stage: str | None = None, action: str | None = None,
                           action_type: dict | None = None, result: dict | None = None,
                           action_execution: str | None = None) -> None:
        level = "Action" if action else "Stage" if stage else "Pipeline"
        detail: dict[str, Any] = {"pipeline": svc.pipeline, "execution-id": execution,
                                  "start-time": _iso_ms(started), "execution-trigger": trigger}
        if stage:
            detail["stage"] = stage
        if result:
            detail["execution-result"] = result
        if action:
            detail.update({"action-execution-id": action_execution, "action": action, "region": AWS_REGION,
                           "type": action_type})
        detail.update({"state": state, "version": 7, "pipeline-execution-attempt": attempt})
        self.emit(at, "codepipeline", None, {
            "version": "0", "id": self.uuid(), "detail-type": f"CodePipeline {level} Execution State Change",
            "source": "aws.codepipeline", "account": AWS_ACCOUNT, "time": _iso(at), "region": AWS_REGION,
            "resources": [f"arn:aws:codepipeline:{AWS_REGION}:{AWS_ACCOUNT}:{svc.pipeline}"], "detail": detail})

    STAGES = (
        ("Source", "Source", {"owner": "AWS", "category": "Source", "provider": "CodeStarSourceConnection",
                              "version": "1"}, (0.1, 0.5)),
        ("Build", "Build", {"owner": "AWS", "category": "Build", "provider": "CodeBuild", "version": "1"}, (3, 9)),
        ("Test", "IntegrationTests", {"owner": "AWS", "category": "Test", "provider": "CodeBuild",
                                      "version": "1"}, (4, 12)),
        ("Approval", "ManualApproval", {"owner": "AWS", "category": "Approval", "provider": "Manual",
                                        "version": "1"}, None),
        ("Prod", "Deploy", {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": "1"}, (4, 12)),
    )

    def action_result(self, svc: Service, stage: str, ok: bool, head_sha: str, message: str,
                      approver: Person | None) -> dict:
        rng = self.rng
        if stage == "Source":
            summary = json.dumps({"ProviderType": "GitHub", "CommitMessage": message.splitlines()[0]})
            return {"external-execution-id": head_sha, "external-execution-summary": summary}
        if stage in ("Build", "Test"):
            project = f"{svc.name}-{stage.lower()}"
            out = {"external-execution-id": f"{project}:{self.uuid()}",
                   "external-execution-summary": "Build succeeded" if ok else
                   ("Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, Message: "
                    f"Error while executing command: make {'build' if stage == 'Build' else 'integration-test'}. "
                    "Reason: exit status 2")}
            return out if ok else {**out, "error-code": "JobFailed"}
        if stage == "Approval":
            login = approver.login if approver else "ops"
            who = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/ReleaseApprovers/{login}"
            return {"external-execution-summary": f"{'Approved' if ok else 'Rejected'} by {who}"}
        deployment = "d-" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(9))
        out = {"external-execution-id": deployment,
               "external-execution-summary": "Deployment Succeeded" if ok else
               f"Deployment {deployment} failed: the deployment failed because too many individual instances "
               "failed deployment"}
        return out if ok else {**out, "error-code": "JobFailed"}

    def codepipeline_release(self, svc: Service, st: _State, head: dict,
                             at: datetime) -> tuple[_Deployment | None, datetime]:
        """A push starts an execution: Source, Build, Test, a manual Approval, then the Prod deploy."""
        rng = self.rng
        execution = self.uuid()
        head_sha, message = head["id"], head["message"]
        self.version(st)
        started = at + timedelta(seconds=rng.randint(3, 40))
        trigger = {"trigger-type": "Webhook",
                   "trigger-detail": f"arn:aws:codestar-connections:{AWS_REGION}:{AWS_ACCOUNT}:connection/"
                                     "7d2a61b4-09c3-4b1e-9f8e-2c5d0e6a1b77",
                   "commit-id": head_sha, "branch-name": "main", "full-repository-name": svc.repository,
                   "provider-type": "GitHub"}
        plan = self.plan()
        if plan == "ok" and rng.random() < 0.015:
            plan = "rejected"
        ev = lambda t, state, attempt, **kw: self.codepipeline_event(  # noqa: E731
            svc, execution, started, trigger, attempt, t, state, **kw)
        attempt, t = 1, started
        ev(t, "STARTED", attempt)
        for stage, action, action_type, minutes in self.STAGES:
            t += timedelta(seconds=rng.randint(1, 4))
            ev(t, "STARTED", attempt, stage=stage)
            approver = rng.choice(self.people[svc.team]) if stage == "Approval" else None
            fail = plan == {"Build": "build_fail", "Test": "test_fail", "Approval": "rejected",
                            "Prod": "deploy_fail"}.get(stage) or (plan == "flaky" and stage == "Test")
            while True:
                action_id = self.uuid()
                act_start = t + timedelta(seconds=rng.randint(0, 2))
                ev(act_start, "STARTED", attempt, stage=stage, action=action, action_type=action_type,
                   action_execution=action_id)
                if minutes is None:  # a person approves: minutes to hours, in their working hours
                    done = self.working(act_start + self.lognormal(25, 1.0, 1, 8 * 60), svc.offset)
                else:
                    done = act_start + _minutes(rng.uniform(*minutes))
                ev(done, "FAILED" if fail else "SUCCEEDED", attempt, stage=stage, action=action,
                   action_type=action_type, action_execution=action_id,
                   result=self.action_result(svc, stage, not fail, head_sha, message, approver))
                t = done + timedelta(seconds=rng.randint(0, 2))
                ev(t, "FAILED" if fail else "SUCCEEDED", attempt, stage=stage)
                if not fail:
                    break
                t += timedelta(seconds=rng.randint(1, 3))
                ev(t, "FAILED", attempt)
                if plan != "flaky" or attempt > 1:
                    if plan == "deploy_fail" and rng.random() < 0.5 and st.last_good is not None:
                        return None, self.codepipeline_rollback(svc, st, t + _minutes(rng.uniform(0.2, 1)),
                                                                "AutomatedRollback", execution)
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
        return _Deployment(f"codepipeline:{svc.pipeline}:{execution}", execution, head_sha, "",
                           t), t

    def codepipeline_rollback(self, svc: Service, st: _State, at: datetime, kind: str, detail: str) -> datetime:
        """A rollback execution redeploys the last good revision: only the Prod stage runs."""
        rng = self.rng
        execution = self.uuid()
        trigger = {"trigger-type": kind, "trigger-detail": detail}
        stage, action, action_type, minutes = self.STAGES[-1]
        t = at
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "STARTED")
        t += timedelta(seconds=rng.randint(1, 4))
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "STARTED", stage=stage)
        action_id = self.uuid()
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "STARTED", stage=stage, action=action,
                                action_type=action_type, action_execution=action_id)
        t += _minutes(rng.uniform(*minutes))
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "SUCCEEDED", stage=stage, action=action,
                                action_type=action_type, action_execution=action_id,
                                result=self.action_result(svc, stage, True, "", "", None))
        t += timedelta(seconds=rng.randint(0, 2))
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "SUCCEEDED", stage=stage)
        t += timedelta(seconds=rng.randint(1, 3))
        self.codepipeline_event(svc, execution, at, trigger, 1, t, "SUCCEEDED")
        return t

    # -- when a release goes bad --

    def bad_release(self, svc: Service, gh: _GitHub, st: _State, bad: _Deployment) -> None:
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
            else:
                done = t + _minutes(rng.uniform(2, 6))
                self.github_deployment(svc, gh, st, good.sha or "", good.version, {
                    "version": good.version, "rollback_of": bad.native}, engineer, t, done, "success", None,
                    f"Roll back to {good.version}")
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

    def hotfix(self, svc: Service, gh: _GitHub, st: _State, at: datetime) -> _Deployment:
        """A quick fix: through the deploy workflow (GitHub) or a hotfix branch and the deploy script."""
        rng = self.rng
        engineer = rng.choice(self.people[svc.team])
        sha = self.sha()
        message = f"hotfix: {self.commit_message().lower()}"
        committed = at - _minutes(rng.uniform(3, 20))
        if svc.platform == "github":
            commit = gh.commit(sha, self.sha(), message, committed, engineer, self.files(svc), committer=engineer)
            self.emit(at, "github", "push", gh.push("main", st.head, [commit], engineer))
            st.head = sha
            deployment, finished = self.github_release(svc, gh, st, commit, engineer, at, hotfix=True)
            return deployment or _Deployment("", None, sha, "", finished)
        branch = f"hotfix/{message.split(': ', 1)[1].replace(' ', '-')[:32]}"
        commit = gh.commit(sha, self.sha(), message, committed, engineer, self.files(svc), committer=engineer)
        self.emit(at, "github", "push", gh.push(branch, st.head, [commit], engineer, created=True))
        started = at + _minutes(rng.uniform(2, 6))
        finished = started + _minutes(rng.uniform(3, 8))
        version = self.version(st, hotfix=True)
        record_id = f"deploy-{svc.name}-{finished:%Y%m%d%H%M}"
        self.emit(finished, "generic", None, {
            "type": "deployment", "id": record_id, "service": svc.name, "environment": "production",
            "status": "success", "started_at": _iso(started), "finished_at": _iso(finished), "commits": [sha],
            "version": version, "hotfix": True, "team": svc.team})
        return _Deployment(record_id, record_id, sha, version, finished)

    # -- incidents --

    def deployment_incident(self, svc: Service, bad: _Deployment, opened: datetime, restored: datetime) -> None:
        rng = self.rng
        resolved = restored + self.lognormal(8, 0.8, 1, 120)
        if resolved >= self.end:
            return
        title = rng.choice(INCIDENT_TITLES).format(svc=svc.name)
        if rng.random() < 0.2:  # recorded by the team's status-page tooling, which knows the deployment
            self.generic_incidents.append((opened, {
                "type": "incident", "id": "", "service": svc.name, "opened_at": _iso(opened),
                "resolved_at": _iso(resolved), "severity": rng.choice(("sev1", "sev2", "sev2", "sev3")),
                "deployment_id": bad.id, "title": title}))
            self.emit(resolved, "generic", None, self.generic_incidents[-1][1])
            return
        acked = opened + self.lognormal(4, 0.7, 0.5, 25)
        self.pagerduty_incident(svc, opened, title, "high", acked=min(acked, resolved), resolved=resolved,
                                priority=rng.choice(("P1", "P2", "P2")))

    def pagerduty_incident(self, svc: Service, opened: datetime, title: str, urgency: str,
                           acked: datetime | None, resolved: datetime | None, priority: str | None) -> None:
        rng = self.rng
        incident = _pd_id(rng, "Q", 14)
        responder = rng.choice(self.people[svc.team])
        team_name = TEAMS[svc.team][1]
        service_ref = {"html_url": f"https://{PD_DOMAIN}/service-directory/{svc.pagerduty_id}",
                       "id": svc.pagerduty_id, "self": f"https://api.pagerduty.com/services/{svc.pagerduty_id}",
                       "summary": svc.pagerduty_name, "type": "service_reference"}
        user_ref = {"html_url": f"https://{PD_DOMAIN}/users/{responder.pd_id}", "id": responder.pd_id,
                    "self": f"https://api.pagerduty.com/users/{responder.pd_id}", "summary": responder.name,
                    "type": "user_reference"}
        team_id = "P" + svc.pagerduty_id[1:4] + team_name[:3].upper()
        policy_id = "P" + svc.pagerduty_id[2:5] + "ESC"
        key = f"{rng.getrandbits(128):032x}"
        priority_ref = None if priority is None else {
            "html_url": f"https://{PD_DOMAIN}/account/incident_priorities", "id": f"PPRI{priority[-1]}XX",
            "self": f"https://api.pagerduty.com/priorities/PPRI{priority[-1]}XX", "summary": priority,
            "type": "priority_reference"}
        datas = []
        for state, at in (("triggered", opened), ("acknowledged", acked), ("resolved", resolved)):
            if at is None:
                continue
            auto = state == "resolved" and acked is None
            data = {"id": incident, "type": "incident", "self": f"https://api.pagerduty.com/incidents/{incident}",
                    "html_url": f"https://{PD_DOMAIN}/incidents/{incident}", "number": 0, "status": state,
                    "incident_key": key, "created_at": _iso(opened), "title": title, "service": service_ref,
                    "assignees": [] if state == "resolved" else [user_ref],
                    "escalation_policy": {"html_url": f"https://{PD_DOMAIN}/escalation_policies/{policy_id}",
                                          "id": policy_id,
                                          "self": f"https://api.pagerduty.com/escalation_policies/{policy_id}",
                                          "summary": f"{team_name} on-call",
                                          "type": "escalation_policy_reference"},
                    "teams": [{"html_url": f"https://{PD_DOMAIN}/teams/{team_id}", "id": team_id,
                               "self": f"https://api.pagerduty.com/teams/{team_id}", "summary": team_name,
                               "type": "team_reference"}],
                    "priority": priority_ref, "urgency": urgency, "conference_bridge": None,
                    "resolve_reason": None}
            datas.append(data)
            self.emit(at, "pagerduty", None, {"event": {
                "id": _ulid(rng, at), "event_type": f"incident.{state}", "resource_type": "incident",
                "occurred_at": _iso_ms(at), "agent": service_ref if state == "triggered" or auto else user_ref,
                "client": {"name": "Amazon CloudWatch"} if state == "triggered" else None, "data": data}})
        self.pd_incidents.append((opened, datas))

    def background_incidents(self) -> None:
        """Incidents no deployment caused (capacity, dependencies): some auto-resolve unacknowledged."""
        rng = self.rng
        span = (self.end - self.start).total_seconds()
        for svc in self.org:
            for _ in range(_poisson(rng, span / 86400 / 40)):
                opened = self.start + timedelta(seconds=rng.uniform(0, span))
                auto = rng.random() < 0.3
                acked = None if auto else opened + self.lognormal(6, 0.8, 0.5, 45)
                resolved = (acked or opened) + self.lognormal(35 if not auto else 12, 1.0, 2, 10 * 60)
                if resolved >= self.end:
                    continue
                self.pagerduty_incident(svc, opened, rng.choice(BACKGROUND_TITLES).format(svc=svc.name),
                                        "low" if auto else "high", acked, resolved, None if auto else "P3")

    def open_incidents(self) -> None:
        """One or two incidents are still being worked on when the history ends."""
        rng = self.rng
        for svc in rng.sample(self.org, min(len(self.org), 1 + (rng.random() < 0.5))):
            opened = self.end - _minutes(rng.uniform(40, 600))
            acked = opened + self.lognormal(5, 0.6, 1, 20)
            self.pagerduty_incident(svc, opened, rng.choice(BACKGROUND_TITLES).format(svc=svc.name), "high",
                                    acked if acked < self.end else None, None, "P2")

    def number_incidents(self) -> None:
        """PagerDuty numbers and generic INC- ids count up in the order incidents were opened."""
        for n, (_, datas) in enumerate(sorted(self.pd_incidents, key=lambda x: x[0]), 1001):
            for data in datas:
                data["number"] = n
        for n, (_, record) in enumerate(sorted(self.generic_incidents, key=lambda x: x[0]), 301):
            record["id"] = f"INC-{n}"


# --- the public API --------------------------------------------------------------------------------

def _end_of(end: date | datetime | None) -> datetime:
    if end is None:
        now = utcnow()
        return datetime(now.year, now.month, now.day, tzinfo=UTC)
    if isinstance(end, datetime):
        return as_utc(end)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def generate(services: int = DEFAULT_SERVICES, days: int = DEFAULT_DAYS, seed: int = DEFAULT_SEED,
             end: date | datetime | None = None) -> list[tuple[str, str | None, dict]]:
    """The demo's payloads in time order: (source, hint, payload), hint being the GitHub event name."""
    _check(services, days)
    return _History(services, days, seed, _end_of(end)).run()


def payload_kind(source: str, hint: str | None, payload: dict) -> str:
    """A short label of what a payload is, for counting (not the normaliser's kind)."""
    if source == "github":
        return hint or "unknown"
    if source == "codepipeline":
        return payload["detail-type"].split()[1].lower()
    if source == "pagerduty":
        return payload["event"]["event_type"]
    return payload.get("type", "unknown")


@dataclass
class DemoResult:
    """What the demo built and what the ingest made of it."""

    services: list[Service]
    start: datetime
    end: datetime
    seed: int
    payloads: Counter
    summary: IngestSummary
    generate_seconds: float
    ingest_seconds: float

    @property
    def teams(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for s in self.services:
            out.setdefault(s.team, []).append(s.name)
        return out

    def to_dict(self) -> dict[str, Any]:
        by_source: dict[str, dict[str, int]] = {}
        for (source, kind), n in sorted(self.payloads.items()):
            by_source.setdefault(source, {})[kind] = n
        return {
            "services": [{"name": s.name, "team": s.team, "platform": s.platform, "repository": s.repository,
                          "pipeline": s.pipeline, "pagerduty_service": s.pagerduty_id} for s in self.services],
            "teams": self.teams, "seed": self.seed, "start": self.start.isoformat(), "end": self.end.isoformat(),
            "payloads": sum(self.payloads.values()), "payloads_by_source": by_source,
            "ingest": self.summary.to_dict(), "generate_seconds": round(self.generate_seconds, 2),
            "ingest_seconds": round(self.ingest_seconds, 2),
        }


def envelopes(payloads: list[tuple[str, str | None, dict]]) -> Iterator[Envelope]:
    """Each payload as the ingest path receives it: compact JSON text, its source and hint."""
    for i, (source, hint, payload) in enumerate(payloads, 1):
        yield Envelope(json.dumps(payload, separators=(",", ":"), ensure_ascii=False), payload, source, hint,
                       f"demo#{i}")


def run_demo(engine: Engine, config: Config, services: int = DEFAULT_SERVICES, days: int = DEFAULT_DAYS,
             seed: int = DEFAULT_SEED, end: date | datetime | None = None,
             progress: Callable[[int], None] | None = None) -> DemoResult:
    """Generate the demo history and ingest it, in time order, through the one ingest path."""
    end_at = _end_of(end)
    began = time.perf_counter()
    payloads = generate(services, days, seed, end_at)
    generated = time.perf_counter()
    summary = ingest(engine, envelopes(payloads), config, progress=progress)
    done = time.perf_counter()
    counts = Counter((source, payload_kind(source, hint, p)) for source, hint, p in payloads)
    return DemoResult(organisation(services, seed), end_at - timedelta(days=days), end_at, seed, counts, summary,
                      generated - began, done - generated)
