"""Changes reaching main: commits, direct pushes and merged pull requests (GitHub webhooks)."""

from __future__ import annotations

from datetime import datetime, timedelta

from .github import Repository
from .github_actions import GitHubActions
from .organisation import ORG, Person, Service
from .timeline import ServiceState, minutes

VERBS = (
    "Fix",
    "Add",
    "Refactor",
    "Improve",
    "Handle",
    "Cache",
    "Validate",
    "Log",
    "Speed up",
    "Remove",
    "Retry",
    "Bump",
)
THINGS = (
    "timeout handling",
    "pagination",
    "input validation",
    "retry on 503",
    "metrics labels",
    "error messages",
    "feature flag",
    "N+1 query",
    "connection pool size",
    "dependency versions",
    "null handling",
    "rate limiting",
    "idempotency keys",
    "tracing spans",
    "config loading",
    "health check",
    "currency rounding",
    "search ranking",
    "cache invalidation",
    "batch size",
)


class Commits(GitHubActions):
    """Commits, pushes and pull requests; a pull request's CI runs through GitHub Actions."""

    def commit_message(self) -> str:
        """A commit message's first line: a verb and a thing."""
        return f"{self.rng.choice(VERBS)} {self.rng.choice(THINGS)}"

    def files(self, svc: Service) -> list[str]:
        """One to three of the service's source files a commit modifies."""
        pool = (
            "handlers.py",
            "models.py",
            "client.py",
            "settings.py",
            "api/routes.py",
            "jobs/worker.py",
            "tests/test_api.py",
            "tests/test_models.py",
        )
        return sorted(self.rng.sample([f"src/{svc.name.replace('-', '_')}/{f}" for f in pool], self.rng.randint(1, 3)))

    def changes(self, svc: Service, gh: Repository, st: ServiceState, at: datetime) -> tuple[dict, Person]:
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
        opened = min(stamps[-1] + minutes(rng.uniform(2, 60)), at - minutes(1))
        merger = rng.choice([p for p in team if p != author])
        pr_id = self.next_id(st, "pr", 900_000_000, 1_900_000_000, (5_000, 900_000))
        if svc.platform == "github" and (at - max(opened, stamps[-1])) > timedelta(minutes=20):
            self.pull_request_ci(gh, st, branch, commits[-1], author, number, pr_id, max(opened, stamps[-1]))
        merge_sha = self.sha()
        merge = gh.commit(
            merge_sha,
            self.sha(),
            f"Merge pull request #{number} from {ORG}/{branch}\n\n{title}",
            at,
            merger,
            [],
            committer=None,
        )
        self.emit(
            at,
            "github",
            "pull_request",
            gh.pull_request_closed(
                number, pr_id, title, author, merger, branch, parent, st.head, merge_sha, opened, at, count, rng
            ),
        )
        self.emit(
            at + timedelta(seconds=rng.randint(1, 4)),
            "github",
            "push",
            gh.push("main", st.head, [*commits, merge], merger),
        )
        st.head = merge_sha
        return merge, merger
