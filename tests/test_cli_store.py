"""The CLI shell over the store: exit codes, --json, stdin, help, and no tracebacks."""

from __future__ import annotations

import json

import pytest

from tests.conftest import fixture_path

DEPLOY = {
    "type": "deployment",
    "id": "d1",
    "service": "api",
    "environment": "production",
    "status": "success",
    "finished_at": "2024-05-01T10:10:00Z",
    "commits": ["abc1234"],
}


def test_ingest_exit_codes_and_json_summary(store_url, tmp_path, gatewatch):
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps(DEPLOY) + "\n")
    res = gatewatch("--db", store_url, "ingest", str(good), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["stored"] == 1

    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps(dict(DEPLOY, id="d2", status="exploded")) + "\n")
    res = gatewatch("--db", store_url, "ingest", str(bad))
    assert res.returncode == 1
    assert "quarantined 1" in res.stdout and "field 'status': expected one of" in res.stdout

    res = gatewatch("--db", store_url, "ingest", "-", "--json", stdin=json.dumps(DEPLOY))
    assert res.returncode == 0 and json.loads(res.stdout)["duplicates"] == 1

    res = gatewatch("--db", store_url, "quarantine", "--json")
    (entry,) = json.loads(res.stdout)
    assert (entry["source"], entry["count"]) == ("generic", 1) and "status" in entry["error"]
    assert entry["examples"][0]["head"] == json.dumps(dict(DEPLOY, id="d2", status="exploded"))[:120]


def test_quarantine_groups_identical_reasons_with_a_count_and_the_first_bytes(store_url, tmp_path, gatewatch):
    circleci = json.loads(fixture_path("senders/circleci.workflow-completed.json").read_text())
    hooks = [dict(circleci, id=f"hook-{i}") for i in range(30)]  # 30 deliveries, one reason
    broken = [dict(DEPLOY, id=f"b{i}", status="exploded") for i in range(2)]
    path = tmp_path / "mixed.ndjson"
    path.write_text("".join(json.dumps(p) + "\n" for p in [*hooks, *broken]))
    res = gatewatch("--db", store_url, "ingest", str(path), "--json")
    assert (res.returncode, json.loads(res.stdout)["quarantined"]) == (1, 32)

    res = gatewatch("--db", store_url, "quarantine")
    lines = res.stdout.splitlines()
    heads = [line for line in lines if " x [" in line]
    assert len(heads) == 2  # one line per reason, not 32
    assert heads[0].split(" x ")[0].strip() == "2" and "field 'status'" in heads[0]  # the newest reason first
    assert heads[1].split(" x ")[0].strip() == "30" and "looks like a CircleCI webhook" in heads[1]
    assert sum('"id": "hook-' in line for line in lines) == 3 and "... and 27 more" in res.stdout

    groups = json.loads(gatewatch("--db", store_url, "quarantine", "--json", "--examples", "1").stdout)
    assert [(g["count"], len(g["examples"])) for g in groups] == [(2, 1), (30, 1)]
    assert groups[1]["examples"][0]["head"].startswith('{"type": "workflow-completed", "id": "hook-29"')


def test_usage_errors_exit_2_without_traceback(tmp_path, gatewatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    for args in (["ingest", str(tmp_path / "missing.json")], ["ingest", "x", "--source", "nope"], ["nope"]):
        res = gatewatch("--db", url, *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr and res.stderr.strip()
    res = gatewatch("--db", "mysql+nonexistent://x", "quarantine")
    assert res.returncode == 4 and "Traceback" not in res.stderr
    res = gatewatch("--config", str(tmp_path / "nope.yaml"), "--db", url, "quarantine")
    assert res.returncode == 2 and "nope.yaml" in res.stderr and "does not exist" in res.stderr


def test_db_resolution_honours_option_then_env_then_default(tmp_path, gatewatch):
    res = gatewatch("db", "upgrade", cwd=tmp_path)
    assert res.returncode == 0 and (tmp_path / "gatewatch.db").exists()
    env_db = tmp_path / "env.db"
    res = gatewatch("db", "upgrade", "--json", cwd=tmp_path, env={"GATEWATCH_DB": f"sqlite:///{env_db}"})
    assert json.loads(res.stdout)["to"] and env_db.exists()
    res = gatewatch(
        "--db",
        f"sqlite:///{tmp_path / 'opt.db'}",
        "db",
        "current",
        cwd=tmp_path,
        env={"GATEWATCH_DB": f"sqlite:///{env_db}"},
    )
    assert "opt.db" in res.stdout


def test_replay_command(tmp_path, gatewatch):
    url = f"sqlite:///{tmp_path / 's.db'}"
    gatewatch("--db", url, "ingest", "-", stdin=json.dumps(DEPLOY))
    res = gatewatch("--db", url, "replay", "--json")
    assert res.returncode == 0
    out = json.loads(res.stdout)
    assert out["events"] == 1 and out["rows"]["deployments"] == 1


@pytest.mark.parametrize("command", [[], ["db"], ["db", "upgrade"], ["ingest"], ["replay"], ["quarantine"]])
def test_every_command_has_help(command):
    from click.testing import CliRunner

    from gatewatch.cli import cli

    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.splitlines()) > 3
