"""`gatewatch serve` as a real process on loopback: a signed GitHub delivery lands in the store."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import fixture_path
from tests.processes import free_port, wait_until_healthy


def test_signed_github_delivery_through_a_real_server(tmp_path):
    db = tmp_path / "served.db"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env["GATEWATCH_GITHUB_SECRET"] = "s3cret"
    exe = Path(sys.executable).with_name("gatewatch")
    proc = subprocess.Popen(
        [str(exe), "--db", f"sqlite:///{db}", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(f"{base}/healthz", proc)
        body = fixture_path("github/workflow_run.completed.json").read_bytes()
        signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        res = httpx.post(
            f"{base}/webhooks/github",
            content=body,
            headers={"X-GitHub-Event": "workflow_run", "X-Hub-Signature-256": signature},
        )
        assert res.status_code == 200, res.text
        bad = httpx.post(
            f"{base}/webhooks/github",
            content=body,
            headers={"X-GitHub-Event": "workflow_run", "X-Hub-Signature-256": "sha256=00"},
        )
        assert bad.status_code == 401
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert "s3cret" not in stderr  # the secret never reaches the log
    with create_engine(f"sqlite:///{db}").connect() as conn:
        status = conn.execute(text("SELECT status FROM pipeline_runs")).scalar_one()
        raw = conn.execute(text("SELECT count(*) FROM raw_events")).scalar_one()
    assert status == "succeeded" and raw == 1
