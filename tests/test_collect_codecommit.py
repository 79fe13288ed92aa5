"""`collect codecommit`: a branch's commits read with botocore's Stubber (moto implements no
GetBranch or GetCommit; Stubber checks every request and response against the service model), walked
back through parents to --since, archived one per commit and rebuilt by a replay. The command against
moto's server for what it answers (GetRepository), and AWS errors as messages with an exit status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlalchemy import select

from collector import ingest
from collector.history import codecommit as history
from collector.history import codepipeline as codepipeline_history
from collector.models import raw_events
from gatewatch.errors import ConfigError, SourceUnavailable
from tests.conftest import dump_projections
from tests.test_collect_codepipeline import aws_env, run_main

REPO = "MyDemoRepo"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# main: c3 (merge of c2 and f1) <- c2 <- c1 <- c0 (old); f1 <- c1
DATES = {
    "c3": T0,
    "c2": T0 - timedelta(days=2),
    "f1": T0 - timedelta(days=3),
    "c1": T0 - timedelta(days=5),
    "c0": T0 - timedelta(days=40),
}
PARENTS = {"c3": ["c2", "f1"], "c2": ["c1"], "f1": ["c1"], "c1": ["c0"], "c0": []}


def client():
    return boto3.client("codecommit", region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 1}))


def sha(name: str) -> str:
    return (name * 20)[:40]


def git_date(at: datetime, offset: str = "-0800") -> str:
    return f"{int(at.timestamp())} {offset}"


def commit(name: str) -> dict:
    """A GetCommit answer as CodeCommit documents it (API_GetCommit.html's sample response)."""
    person = {"name": "Mary Major", "email": "mary_major@example.com", "date": git_date(DATES[name])}
    return {
        "commit": {
            "commitId": sha(name),
            "treeId": "347a3408EXAMPLE",
            "parents": [sha(p) for p in PARENTS[name]],
            "message": f"Change {name}\n\nDetails",
            "author": person,
            "committer": person,
            "additionalData": "",
        }
    }


def stub_walk(stubber: Stubber, branch: str = "main", order=("c3", "c2", "f1", "c1", "c0")) -> None:
    stubber.add_response(
        "get_branch",
        {"branch": {"branchName": branch, "commitId": sha("c3")}},
        {"repositoryName": REPO, "branchName": branch},
    )
    for name in order:
        stubber.add_response("get_commit", commit(name), {"repositoryName": REPO, "commitId": sha(name)})


def test_backfill_walks_parents_back_to_since_and_archives_each_commit(engine, config):
    cc = client()
    with Stubber(cc) as stubber:
        stub_walk(stubber)
        summary = history.backfill(engine, config, cc, REPO, T0 - timedelta(days=30), branch="main")
        stubber.assert_no_pending_responses()  # c0 is read (it is a parent) but not walked past
    assert summary.quarantined == [] and summary.stored == 4 and summary.by_source == {"codecommit": 4}
    rows = {r["id"]: r for r in dump_projections(engine)["changes"]}
    assert {r: rows[r]["committed_at"] for r in rows} == {sha(n): DATES[n] for n in ("c3", "c2", "f1", "c1")}
    assert rows[sha("c3")]["title"] == "Change c3" and rows[sha("c3")]["service"] == REPO
    with engine.connect() as conn:
        kinds = set(conn.execute(select(raw_events.c.source, raw_events.c.kind)).all())
    assert kinds == {("codecommit", "commit")}


def test_running_again_stores_nothing_new_and_a_replay_rebuilds_the_rows(engine, config):
    since = T0 - timedelta(days=30)
    for _ in range(2):
        cc = client()
        with Stubber(cc) as stubber:
            stub_walk(stubber)
            summary = history.backfill(engine, config, cc, REPO, since, branch="main")
    assert (summary.stored, summary.duplicates) == (0, 4)
    before = dump_projections(engine)
    ingest.replay(engine, config)
    assert dump_projections(engine) == before and len(before["changes"]) == 4


def test_the_default_branch_comes_from_the_repository(engine, config):
    cc = client()
    with Stubber(cc) as stubber:
        stubber.add_response(
            "get_repository",
            {"repositoryMetadata": {"repositoryName": REPO, "defaultBranch": "trunk"}},
            {"repositoryName": REPO},
        )
        stub_walk(stubber, branch="trunk", order=("c3", "c2", "f1", "c1"))
        summary = history.backfill(engine, config, cc, REPO, T0 - timedelta(days=2, hours=12))
        stubber.assert_no_pending_responses()
    assert summary.stored == 2  # c3 and c2; f1 and c1 are older than --since


def test_an_unreadable_commit_date_is_quarantined_not_walked_past(engine, config):
    cc = client()
    with Stubber(cc) as stubber:
        stubber.add_response(
            "get_branch", {"branch": {"commitId": sha("c3")}}, {"repositoryName": REPO, "branchName": "main"}
        )
        bad = commit("c3")
        bad["commit"]["committer"]["date"] = "Tue Feb 9 2019"
        stubber.add_response("get_commit", bad, {"repositoryName": REPO, "commitId": sha("c3")})
        summary = history.backfill(engine, config, cc, REPO, T0 - timedelta(days=30), branch="main")
        stubber.assert_no_pending_responses()
    (q,) = summary.quarantined
    assert q.source == "codecommit" and "commit.committer.date" in q.error


def test_aws_errors_become_clear_messages(engine, config):
    cc = client()
    with Stubber(cc) as stubber:
        stubber.add_client_error("get_branch", "BranchDoesNotExistException", "Branch 'dev' does not exist")
        with pytest.raises(ConfigError, match="Branch 'dev' does not exist: check --repository, --branch"):
            history.backfill(engine, config, cc, REPO, T0, branch="dev")
    cc = client()
    with Stubber(cc) as stubber:
        stub_walk(stubber, order=("c3",))
        stubber.add_client_error("get_commit", "ThrottlingException", "Rate exceeded")
        with pytest.raises(SourceUnavailable, match=r"ThrottlingException .*\(1 commit\(s\) stored before this"):
            history.backfill(engine, config, cc, REPO, T0 - timedelta(days=30), branch="main", batch_size=1)
    assert [r["id"] for r in dump_projections(engine)["changes"]] == [sha("c3")]  # the stored batch is kept


def test_cli_collect_codecommit(store_url, monkeypatch):
    from gatewatch.cli import cli

    cc, seen = client(), {}
    with Stubber(cc) as stubber:
        stub_walk(stubber)
        monkeypatch.setattr(history, "make_client", lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs) or cc)
        monkeypatch.setattr("gatewatch.api.utcnow", lambda: T0 + timedelta(hours=1))
        options = f"--repository {REPO} --branch main --since 30d --region eu-west-1 --endpoint-url http://127.0.0.1:1"
        result = CliRunner().invoke(cli, ["--db", store_url, "collect", "codecommit", *options.split(), "--json"])
        assert result.exit_code == 0, result.output
        stubber.assert_no_pending_responses()
    out = json.loads(result.stdout)
    assert (out["stored"], out["quarantined"], out["by_source"]) == (4, 0, {"codecommit": 4})
    assert seen == {"args": ("eu-west-1", "http://127.0.0.1:1"), "kwargs": {"service": "codecommit"}}


@pytest.fixture
def moto_repos(moto_url):
    """moto's server with an empty repository "app" in eu-west-1 (moto answers GetRepository, not GetBranch)."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "eu-west-1"}
    boto3.client("codecommit", endpoint_url=moto_url, **keys).create_repository(repositoryName="app")
    return moto_url


@pytest.mark.parametrize(
    "repository, branch, status, message",
    [
        ("app", [], 0, ""),  # empty: no default branch, nothing to read
        ("ghost", [], 2, "error: ghost does not exist: check --repository, --branch and --region"),
        ("app", ["--branch", "main"], 5, "error: CodeCommit answered 500 for 'app': HTTP 500"),
    ],
)
def test_cli_against_moto(moto_repos, monkeypatch, capsys, tmp_path, repository, branch, status, message):
    aws_env(monkeypatch, tmp_path)
    code, err = run_main(
        monkeypatch,
        capsys,
        "--db",
        f"sqlite:///{tmp_path / 'store.db'}",
        "collect",
        "codecommit",
        "--repository",
        repository,
        *branch,
        "--region",
        "eu-west-1",
        "--endpoint-url",
        moto_repos,
    )
    assert (code, err.startswith(message), "Traceback" in err) == (status, True, False), err


def test_the_codepipeline_client_is_still_codepipeline():
    assert codepipeline_history.make_client("eu-west-1").meta.service_model.service_name == "codepipeline"
