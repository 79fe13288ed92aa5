"""The simulation's clock and draws: timestamp formats, release times, ids, and the recorded payloads."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from collector.timeutil import UTC

from .organisation import Person, Service, organisation, people


def iso(t: datetime) -> str:
    """`t` in UTC as ISO 8601 to the second: 2025-06-02T09:30:00Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(t: datetime) -> str:
    """`t` in UTC as ISO 8601 to the millisecond: 2025-06-02T09:30:00.123Z."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def iso_local(t: datetime, offset: int) -> str:
    """A git commit timestamp in the committer's own zone, as GitHub's push payloads show it."""
    return t.astimezone(UTC).astimezone(zone(offset)).isoformat(timespec="seconds")


def zone(offset: int) -> timezone:
    """The fixed time zone `offset` minutes from UTC."""
    return timezone(timedelta(minutes=offset))


def minutes(value: float) -> timedelta:
    """`value` minutes as a timedelta."""
    return timedelta(minutes=value)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw with mean `lam` (Knuth's method)."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass
class Deployment:
    """A production deployment the simulation remembers (to roll back to, or to blame)."""

    id: str
    native: Any
    sha: str | None
    version: str
    finished: datetime


@dataclass
class ServiceState:
    """One service's position in the simulation."""

    head: str
    busy_until: datetime
    version: list[int]
    last_good: Deployment | None = None
    pr_number: int = 0
    run_number: int = 0
    ids: dict[str, int] = field(default_factory=dict)


class Timeline:
    """The simulation's shared state: the organisation, the window, the seeded draws and every payload
    recorded so far; the platform classes build on it."""

    def __init__(self, services: int, days: int, seed: int, end: datetime):
        self.org: list[Service] = organisation(services, seed)
        self.people: dict[str, list[Person]] = people(seed)
        self.end = end
        self.start = end - timedelta(days=days)
        self.rng = random.Random(f"gatewatch-demo:{seed}:{end.isoformat()}")
        self.aws = random.Random(f"gatewatch-demo-aws:{seed}:{end.isoformat()}")  # see demo.aws
        self.events: list[tuple[datetime, int, str, str | None, dict]] = []
        self.pd_incidents: list[tuple[datetime, list[dict]]] = []
        self.generic_incidents: list[tuple[datetime, dict]] = []
        self.alarm_episodes: dict[str, list[Any]] = {}
        self.repository_ids: dict[str, str] = {}

    # -- recording --

    def emit(self, at: datetime, source: str, hint: str | None, payload: dict) -> None:
        """Record a payload sent at `at` (dropped from the end of the window on)."""
        if at < self.end:
            self.events.append((at, len(self.events), source, hint, payload))

    def sha(self) -> str:
        """A random git object id."""
        return f"{self.rng.getrandbits(160):040x}"

    def uuid(self, rng: random.Random | None = None) -> str:
        """A random UUID (version 4), drawn from `rng` (default the history's stream)."""
        return str(uuid.UUID(int=(rng or self.rng).getrandbits(128), version=4))

    def next_id(self, st: ServiceState, kind: str, lo: int, hi: int, step: tuple[int, int] = (1, 50)) -> int:
        """The next id of a `kind` in a service's repository: a random start, then random steps up."""
        if kind not in st.ids:
            st.ids[kind] = self.rng.randrange(lo, hi)
        st.ids[kind] += self.rng.randint(*step)
        return st.ids[kind]

    def lognormal(
        self, median_minutes: float, sigma: float, lo: float, hi: float, rng: random.Random | None = None
    ) -> timedelta:
        """A log-normal duration around `median_minutes`, clipped to [lo, hi] minutes (drawn from `rng`)."""
        return minutes(min(max((rng or self.rng).lognormvariate(math.log(median_minutes), sigma), lo), hi))

    # -- calendar --

    def working(self, t: datetime, offset: int) -> datetime:
        """`t`, or the next working-hours moment of a team in that zone (approvals wait for people)."""
        local = t.astimezone(zone(offset))
        if local.weekday() < 5 and 8 <= local.hour < 19:
            return t
        day = local.date() if local.hour < 8 else local.date() + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        morning = datetime(day.year, day.month, day.day, 9, tzinfo=zone(offset))
        return morning.astimezone(UTC) + self.lognormal(20, 0.8, 2, 120)

    def release_times(self, svc: Service) -> list[datetime]:
        """When a service's changes reach main: Poisson per day, in the team's working hours."""
        tz = zone(svc.offset)
        day = self.start.astimezone(tz).date()
        last = self.end.astimezone(tz).date()
        times = []
        while day <= last:
            factor = 1.0 if day.weekday() < 5 else 0.08
            for _ in range(poisson(self.rng, svc.rate * factor)):
                local = datetime(day.year, day.month, day.day, 9, tzinfo=tz) + minutes(self.rng.uniform(0, 540))
                t = local.astimezone(UTC)
                if self.start <= t < self.end:
                    times.append(t)
            day += timedelta(days=1)
        return sorted(times)

    # -- releases --

    def version(self, st: ServiceState, hotfix: bool = False) -> str:
        """The service's next version: a minor release, or a patch for a hotfix."""
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
