"""GitHub webhook bodies of one repository: pushes, commits, merged pull requests, workflows."""

from __future__ import annotations

import base64
import random
from datetime import datetime
from typing import Any

from .organisation import GITHUB_CI_WORKFLOW, GITHUB_SERVICE_WORKFLOW, ORG, ORG_ID, Person, Service
from .timeline import iso, iso_local


def node(kind: str, number: int) -> str:
    """GitHub's legacy global node id: base64 of '0<len>:<Type><id>'."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


class Repository:
    """GitHub webhook bodies for one repository (trimmed of the many `*_url` fields, shapes kept)."""

    def __init__(self, svc: Service, rng: random.Random, created: datetime):
        self.svc = svc
        self.full = svc.repository
        self.repo_id = rng.randrange(300_000_000, 800_000_000)
        self.api = f"https://api.github.com/repos/{self.full}"
        self.html = f"https://github.com/{self.full}"
        owner = {
            "login": ORG,
            "id": ORG_ID,
            "node_id": node("Organization", ORG_ID),
            "html_url": f"https://github.com/{ORG}",
            "type": "Organization",
            "site_admin": False,
        }
        self.org = {
            "login": ORG,
            "id": ORG_ID,
            "node_id": node("Organization", ORG_ID),
            "url": f"https://api.github.com/orgs/{ORG}",
            "description": "Acme Retail engineering",
        }
        name = self.full.split("/", 1)[1]
        common = {
            "id": self.repo_id,
            "node_id": node("Repository", self.repo_id),
            "name": name,
            "full_name": self.full,
            "private": True,
            "owner": owner,
            "html_url": self.html,
            "description": f"The {svc.name} service",
            "fork": False,
            "url": self.api,
        }
        issues = rng.randrange(0, 40)
        tail: dict[str, Any] = {
            "git_url": f"git://github.com/{self.full}.git",
            "ssh_url": f"git@github.com:{self.full}.git",
            "clone_url": f"{self.html}.git",
            "homepage": None,
            "size": rng.randrange(2_000, 90_000),
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": rng.choice(("Python", "Go", "TypeScript", "Kotlin")),
            "has_issues": True,
            "has_projects": False,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "forks_count": 0,
            "archived": False,
            "disabled": False,
            "open_issues_count": issues,
            "license": None,
            "is_template": False,
            "topics": [],
            "forks": 0,
            "open_issues": issues,
            "watchers": 0,
            "default_branch": "main",
            "visibility": "private",
            "web_commit_signoff_required": False,
            "custom_properties": {},
        }
        self.repo = {
            **common,
            "created_at": iso(created),
            "updated_at": iso(created),
            "pushed_at": iso(created),
            **tail,
        }
        # push payloads carry the repository's times as epoch seconds (a GitHub quirk kept on purpose)
        self.repo_push = {
            **common,
            "created_at": int(created.timestamp()),
            "updated_at": iso(created),
            "pushed_at": int(created.timestamp()),
            **tail,
            "stargazers": 0,
            "master_branch": "main",
            "organization": ORG,
        }
        self.workflows = {
            wf: {"id": rng.randrange(20_000_000, 90_000_000)} for wf in (GITHUB_SERVICE_WORKFLOW, GITHUB_CI_WORKFLOW)
        }

    @staticmethod
    def user(p: Person | None) -> dict:
        """GitHub's user object of a person, or of the github-actions bot for None."""
        if p is None:
            return {
                "login": "github-actions[bot]",
                "id": 41898282,
                "node_id": "MDM6Qm90NDE4OTgyODI=",
                "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
                "gravatar_id": "",
                "url": "https://api.github.com/users/github-actions%5Bbot%5D",
                "html_url": "https://github.com/apps/github-actions",
                "type": "Bot",
                "site_admin": False,
            }
        return {
            "login": p.login,
            "id": p.uid,
            "node_id": node("User", p.uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{p.uid}?v=4",
            "gravatar_id": "",
            "url": f"https://api.github.com/users/{p.login}",
            "html_url": f"https://github.com/{p.login}",
            "type": "User",
            "site_admin": False,
        }

    def commit(
        self,
        sha: str,
        tree: str,
        message: str,
        at: datetime,
        author: Person,
        files: list[str],
        committer: Person | None = None,
    ) -> dict:
        """A commit as a push payload lists it; committed on the web (merge) when `committer` is None."""
        ident = {"name": author.name, "email": f"{author.login}@acme-retail.example", "username": author.login}
        by = {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"} if committer is None else ident
        return {
            "id": sha,
            "tree_id": tree,
            "distinct": True,
            "message": message,
            "timestamp": iso_local(at, author.offset),
            "url": f"{self.html}/commit/{sha}",
            "author": ident,
            "committer": by,
            "added": [],
            "removed": [],
            "modified": files,
        }

    def push(self, branch: str, before: str, commits: list[dict], pusher: Person, created: bool = False) -> dict:
        """A `push` webhook of `commits` to `branch` (`created`: a new branch)."""
        after = commits[-1]["id"]
        return {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "repository": self.repo_push,
            "pusher": {"name": pusher.login, "email": f"{pusher.login}@acme-retail.example"},
            "organization": self.org,
            "sender": self.user(pusher),
            "created": created,
            "deleted": False,
            "forced": False,
            "base_ref": None,
            "compare": f"{self.html}/compare/{before[:12]}...{after[:12]}",
            "commits": commits,
            "head_commit": commits[-1],
        }

    def pull_request_closed(
        self,
        number: int,
        pr_id: int,
        title: str,
        author: Person,
        merger: Person,
        branch: str,
        head: str,
        base: str,
        merge_sha: str,
        created: datetime,
        merged: datetime,
        commits: int,
        rng: random.Random,
    ) -> dict:
        """A `pull_request` webhook: the pull request closed by merging it."""
        url = f"{self.api}/pulls/{number}"
        pr = {
            "url": url,
            "id": pr_id,
            "node_id": node("PullRequest", pr_id),
            "html_url": f"{self.html}/pull/{number}",
            "number": number,
            "state": "closed",
            "locked": False,
            "title": title,
            "user": self.user(author),
            "body": f"{title}.\n\nTested locally and in staging.",
            "created_at": iso(created),
            "updated_at": iso(merged),
            "closed_at": iso(merged),
            "merged_at": iso(merged),
            "merge_commit_sha": merge_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": [],
            "milestone": None,
            "draft": False,
            "head": {
                "label": f"{ORG}:{branch}",
                "ref": branch,
                "sha": head,
                "user": self.user(author),
                "repo": self.repo,
            },
            "base": {"label": f"{ORG}:main", "ref": "main", "sha": base, "user": self.org, "repo": self.repo},
            "author_association": "MEMBER",
            "auto_merge": None,
            "active_lock_reason": None,
            "merged": True,
            "mergeable": None,
            "rebaseable": None,
            "mergeable_state": "unknown",
            "merged_by": self.user(merger),
            "comments": rng.randrange(0, 4),
            "review_comments": rng.randrange(0, 9),
            "maintainer_can_modify": False,
            "commits": commits,
            "additions": rng.randrange(3, 400),
            "deletions": rng.randrange(0, 150),
            "changed_files": rng.randrange(1, 12),
            "_links": {
                "self": {"href": url},
                "html": {"href": f"{self.html}/pull/{number}"},
                "issue": {"href": f"{self.api}/issues/{number}"},
                "comments": {"href": f"{self.api}/issues/{number}/comments"},
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": f"{self.api}/statuses/{head}"},
            },
        }
        return {
            "action": "closed",
            "number": number,
            "pull_request": pr,
            "repository": self.repo,
            "organization": self.org,
            "sender": self.user(merger),
        }

    def workflow(self, wf: tuple[str, str]) -> dict:
        """The workflow object of a (name, path) workflow of the repository."""
        wid = self.workflows[wf]["id"]
        return {
            "id": wid,
            "node_id": node("Workflow", wid),
            "name": wf[0],
            "path": wf[1],
            "state": "active",
            "created_at": self.repo["created_at"],
            "updated_at": self.repo["created_at"],
            "url": f"{self.api}/actions/workflows/{wid}",
            "html_url": f"{self.html}/blob/main/{wf[1]}",
            "badge_url": f"{self.html}/workflows/{wf[0].replace(' ', '%20')}/badge.svg",
        }
