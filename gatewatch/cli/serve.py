"""`gatewatch serve`: the webhook receiver and the gate service over HTTP."""

from __future__ import annotations

import gc
import logging
import os
import threading
from pathlib import Path
from typing import Any

import click

from gatewatch import api, metrics
from gatewatch.logs import configure_logging

from .common import State, pass_state

# How `serve --workers N` hands its log format to the worker processes (the rest goes as GATEWATCH_*).
WORKER_LOG_FORMAT = "GATEWATCH_SERVE_LOG_FORMAT"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--policies",
    "policies_dir",
    metavar="DIR",
    help="Folder of gate policy files to serve (default: GATEWATCH_GATE_POLICIES or gates.policies).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; above 1 needs PROMETHEUS_MULTIPROC_DIR (an empty folder) so /metrics sums them.",
)
@pass_state
def serve(state: State, host: str, port: int, policies_dir: str | None, workers: int) -> None:
    """Receive webhooks over HTTP and archive every payload in the store; answer gate calls.

    \b
    POST /webhooks/github     X-Hub-Signature-256 with GATEWATCH_GITHUB_SECRET
    POST /webhooks/gitlab     X-Gitlab-Token equal to GATEWATCH_GITLAB_TOKEN
    POST /webhooks/pagerduty  X-PagerDuty-Signature (v1) with GATEWATCH_PAGERDUTY_SECRET
    POST /events              Authorization: Bearer GATEWATCH_EVENTS_TOKEN; EventBridge API
                              destination events or generic records (JSON, NDJSON or CSV)
    GET  /healthz             store connectivity
    GET  /metrics             the server's own metrics for Prometheus (open unless
                              GATEWATCH_METRICS_TOKEN is set: then Authorization: Bearer)

    Answers 2xx only after the payload is committed; 401 for a bad or missing signature, 413 above
    webhooks.max_body_bytes, 422 (with the reason) for a malformed body, which is still archived as
    quarantined; 503 when the endpoint's secret is not set or the store is down. Secrets may also
    be set under `webhooks:` in gatewatch.yaml; they are never logged.

    \b
    Gate service (Authorization: Bearer GATEWATCH_GATE_TOKEN; policies from --policies DIR,
    else GATEWATCH_GATE_POLICIES or gates.policies; without them these answer 503):
    POST /v1/gates/NAME/evaluate      {deployment_id, service, key, baseline, canary, params}
                                      -> the decision (200 for promote, hold and rollback)
    GET  /v1/decisions/ID             a stored decision
    GET  /v1/gates                    the gates and their checks
    POST /v1/flagger/NAME/HOOK        Flagger webhook (token in metadata.token): 200 only on
                                      promote (for the rollback hook: only on rollback)
    GET|POST /v1/argo/NAME            Argo Rollouts web metric: 200 with decision, promote, rollback
    GET  /docs, /openapi.json         the API's OpenAPI document
    Policy files are read once at start; a file that does not validate stops the start (exit 2).

    Logs one line per request and per gate decision on stderr; `gatewatch --log-format json serve`
    writes them as JSON objects with request_id (the caller's X-Request-ID, else a new one; sent
    back in X-Request-ID), gate, key and decision as fields.

    --workers N runs N processes on the port; set PROMETHEUS_MULTIPROC_DIR to an empty folder first
    (usage error otherwise), so every worker's counts are summed on /metrics.

    With notify.scan_interval set (and notification channels), a background thread runs `gatewatch
    notify scan` at that interval: burn-rate alerts, stale SLI data, failed production deployments.
    """
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    if workers > 1:
        if not metrics.multiprocess_dir():
            raise click.UsageError(
                f"--workers {workers} needs {metrics.MULTIPROCESS_VARIABLE} set to an empty folder every worker "
                "can write, so that GET /metrics sums the workers' counts (README: 'The server's own metrics')"
            )
        if api.in_memory_store(state.url):
            raise click.UsageError(f"--workers {workers} needs a store every worker can reach, not an in-memory one")
    folder = policies_dir or state.config.gates.policies
    app: Any = _app(state.engine, state.config, folder)  # a policy folder that does not validate stops here
    _log_requests()
    gates = f"{len(app.state.policies)} gate(s) from {folder}" if app.state.policies is not None else "no gate policies"
    listening = f"listening on http://{host}:{port} (store {api.describe_store(state.url)}; {gates})"
    if workers > 1:
        listening += f" with {workers} workers"
        # The workers are new processes: they read the same settings from the environment.
        os.environ.update(GATEWATCH_DB=state.url, **{WORKER_LOG_FORMAT: state.log_format})
        if state.config_path:
            os.environ["GATEWATCH_CONFIG"] = state.config_path
        if folder:
            os.environ["GATEWATCH_GATE_POLICIES"] = str(Path(folder).resolve())
        app = "gatewatch.cli.serve:worker_app"
    if state.log_format == "json":  # every stderr line a JSON object
        logging.getLogger(__name__).info(listening)
    else:
        click.echo(f"gatewatch: {listening}", err=True)
    _freeze()
    # In JSON, uvicorn's own lines go through the one handler too (its text config would replace it).
    log_config = None if state.log_format == "json" else LOGGING_CONFIG
    stop = threading.Event()  # the scanner runs in this (the supervising) process, once for all workers
    if api.start_notify_scanner(state.engine, state.config, stop) is not None:
        every = state.config.notify.scan_interval.total_seconds()
        click.echo(f"gatewatch: notification scan every {every:g} s (notify.scan_interval)", err=True)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            access_log=True,
            log_config=log_config,
            workers=workers,
            factory=workers > 1,
            timeout_worker_healthcheck=30,  # a worker imports the whole service before it answers
        )
    finally:
        stop.set()


def _app(engine: api.Engine, config: api.Config, folder: str | None) -> Any:
    from collector.webhooks import create_app
    from gates.views import build_router

    policies = api.load_policies(folder) if folder else None
    app = create_app(engine, config, routers=[build_router(engine, config, policies)])
    app.state.policies = policies
    return app


def _log_requests() -> None:
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))  # a server logs its requests and decisions


def _freeze() -> None:
    # What is loaded by now (libraries, policies) lives as long as the process: keep it out of the
    # garbage collector's full passes, whose pauses are otherwise the tail of every request's latency.
    gc.collect()
    gc.freeze()


def worker_app() -> Any:
    """The app of one worker process of `gatewatch serve --workers N` (its settings from the environment)."""
    configure_logging(logging.WARNING, os.environ.get(WORKER_LOG_FORMAT, "text"))
    config = api.load_config()
    app = _app(api.open_store(config), config, config.gates.policies)
    _log_requests()
    _freeze()
    return app
