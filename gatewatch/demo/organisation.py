"""The demo organisation: its catalogue of services, teams and engineers, and the config that maps them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from gatewatch.errors import ConfigError

DEFAULT_SERVICES, DEFAULT_DAYS, DEFAULT_SEED = 8, 90, 7
MAX_SERVICES, MAX_DAYS = 60, 730
ORG = "acme-retail"
ORG_ID = 73104522
AWS_ACCOUNT = "483920175634"
AWS_REGION = "eu-west-1"
PD_DOMAIN = "acme-retail.pagerduty.com"
DEMO_FILES = "gatewatch-demo"  # the demo's SLO files and gate policies, beside its gatewatch.yaml
OUTBOX = "notifications.ndjson"  # the demo's notification channel: what would have been sent, one JSON a line

# name, owning team, releases per working day (several a day .. a few a week)
CATALOGUE = (
    ("checkout", "payments", 3.0),
    ("search", "discovery", 4.5),
    ("identity", "platform", 0.4),
    ("payments", "payments", 1.2),
    ("catalog", "discovery", 0.6),
    ("notifications", "platform", 2.0),
    ("recommendations", "discovery", 1.5),
    ("billing", "payments", 0.5),
    ("inventory", "platform", 1.0),
    ("shipping", "payments", 0.8),
    ("pricing", "discovery", 2.5),
    ("gateway", "platform", 0.7),
)
# team -> (UTC offset in minutes of its working hours, PagerDuty team name, engineers)
TEAMS = {
    "payments": (
        60,
        "Payments",
        ("Amara Okafor", "Lukas Schmidt", "Sofia Rossi", "Jonas Berg", "Elif Yilmaz", "Marta Nowak", "Pieter de Vries"),
    ),
    "discovery": (
        -300,
        "Discovery",
        ("Maya Patel", "Diego Alvarez", "Hannah Kim", "Tom Becker", "Grace Liu", "Samuel Adeyemi", "Nora Walsh"),
    ),
    "platform": (
        330,
        "Platform",
        ("Arjun Mehta", "Priya Nair", "Chen Wei", "Fatima Khan", "Ravi Kumar", "Ines Duarte", "Oskar Lind"),
    ),
}

GITHUB_SERVICE_WORKFLOW = ("Build and deploy", ".github/workflows/deploy.yml")
GITHUB_CI_WORKFLOW = ("CI", ".github/workflows/ci.yml")


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


def check(services: int, days: int) -> None:
    """Raise ConfigError unless `services` and `days` are within the demo's limits."""
    if not isinstance(services, int) or not 1 <= services <= MAX_SERVICES:
        raise ConfigError(f"--services: expected a number of services from 1 to {MAX_SERVICES}, got {services!r}")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"--days: expected a number of days from 1 to {MAX_DAYS}, got {days!r}")


def pd_id(rng: random.Random, prefix: str = "P", length: int = 7) -> str:
    """A PagerDuty-style id: `prefix` and random capitals and digits."""
    return prefix + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(length - 1))


def organisation(services: int = DEFAULT_SERVICES, seed: int = DEFAULT_SEED) -> list[Service]:
    """The demo's services: names and teams from a fixed catalogue, platforms alternating."""
    check(services, 1)
    rng = random.Random(f"gatewatch-demo-org:{seed}")
    out = []
    for i in range(services):
        base, team, rate = CATALOGUE[i % len(CATALOGUE)]
        lap = i // len(CATALOGUE)
        name = base if lap == 0 else f"{base}-{lap + 1}"
        if lap:
            rate = round(rate * rng.uniform(0.5, 1.5), 2)
        platform = "codepipeline" if i % 2 == 0 else "github"
        out.append(
            Service(
                name=name,
                team=team,
                platform=platform,
                repository=f"{ORG}/{name}-service",
                pipeline=f"{name}-pipeline" if platform == "codepipeline" else GITHUB_SERVICE_WORKFLOW[0],
                rate=rate,
                pagerduty_id=pd_id(rng),
                pagerduty_name=f"{name.replace('-', ' ').title()} (production)",
                offset=TEAMS[team][0],
            )
        )
    return out


def aws(svc: Service) -> bool:
    """Whether a service releases on AWS (CodePipeline, CodeBuild, CodeDeploy, CodeCommit, CloudWatch)."""
    return svc.platform == "codepipeline"


def mirror(svc: Service) -> str:
    """The name of the CodeCommit repository that mirrors a service's GitHub repository."""
    return svc.repository.rsplit("/", 1)[-1]


def demo_config_mapping(services: int = DEFAULT_SERVICES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The gatewatch.yaml the demo needs: its service and team maps (CodePipeline events and PagerDuty
    webhooks name no team; CodeBuild projects and CodeCommit mirrors are named apart from their service),
    the folders of its SLO files and gate policies, runbook links, and a notification channel writing
    to an NDJSON outbox in its folder (every event routed there)."""
    org = organisation(services, seed)
    return {
        "services": {
            "pipelines": {s.pipeline: s.name for s in org if s.platform == "codepipeline"},
            "repositories": {s.repository: s.name for s in org} | {mirror(s): s.name for s in org if aws(s)},
            "codebuild": {f"{s.name}-{stage}": s.name for s in org if aws(s) for stage in ("build", "test")},
            "pagerduty": {s.pagerduty_id: s.name for s in org},
        },
        "teams": {s.name: s.team for s in org},
        "slos": f"{DEMO_FILES}/slos",
        "gates": {"policies": f"{DEMO_FILES}/gates"},
        "runbooks": {s.name: f"https://runbooks.example.com/{s.name}" for s in org},
        "notify": {
            "channels": {"outbox": {"type": "file", "path": f"{DEMO_FILES}/{OUTBOX}"}},
            "base_url": "http://127.0.0.1:8080",
        },
    }


def people(seed: int) -> dict[str, list[Person]]:
    """Each team's engineers, with GitHub and PagerDuty ids drawn from `seed`."""
    rng = random.Random(f"gatewatch-demo-people:{seed}")
    out: dict[str, list[Person]] = {}
    for team, (offset, _, names) in TEAMS.items():
        out[team] = [
            Person(n, n.lower().replace(" ", "-"), rng.randrange(10_000_000, 160_000_000), pd_id(rng), offset)
            for n in names
        ]
    return out
