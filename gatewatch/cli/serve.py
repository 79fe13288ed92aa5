"""`gatewatch serve`: the webhook receiver and the gate service over HTTP."""

from __future__ import annotations

import gc
import threading

import click

from gatewatch import api

from .common import State, pass_state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--policies",
    "policies_dir",
    metavar="DIR",
    help="Folder of gate policy files to serve (default: GATEWATCH_GATE_POLICIES or gates.policies).",
)
@pass_state
def serve(state: State, host: str, port: int, policies_dir: str | None) -> None:
    """Receive webhooks over HTTP and archive every payload in the store; answer gate calls.

    \b
    POST /webhooks/github     X-Hub-Signature-256 with GATEWATCH_GITHUB_SECRET
    POST /webhooks/gitlab     X-Gitlab-Token equal to GATEWATCH_GITLAB_TOKEN
    POST /webhooks/pagerduty  X-PagerDuty-Signature (v1) with GATEWATCH_PAGERDUTY_SECRET
    POST /events              Authorization: Bearer GATEWATCH_EVENTS_TOKEN; EventBridge API
                              destination events or generic records (JSON, NDJSON or CSV)
    GET  /healthz             store connectivity

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

    With notify.scan_interval set (and notification channels), a background thread runs `gatewatch
    notify scan` at that interval: burn-rate alerts, stale SLI data, failed production deployments.
    """
    import uvicorn

    from collector.webhooks import create_app
    from gates.views import build_router

    folder = policies_dir or state.config.gates.policies
    policies = api.load_policies(folder) if folder else None
    app = create_app(state.engine, state.config, routers=[build_router(state.engine, state.config, policies)])
    gates = f"{len(policies)} gate(s) from {folder}" if policies is not None else "no gate policies"
    click.echo(
        f"gatewatch: listening on http://{host}:{port} (store {api.describe_store(state.url)}; {gates})", err=True
    )
    # What is loaded by now (libraries, policies) lives as long as the process: keep it out of the
    # garbage collector's full passes, whose pauses are otherwise the tail of every request's latency.
    gc.collect()
    gc.freeze()
    stop = threading.Event()
    if api.start_notify_scanner(state.engine, state.config, stop) is not None:
        every = state.config.notify.scan_interval.total_seconds()
        click.echo(f"gatewatch: notification scan every {every:g} s (notify.scan_interval)", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=True)
    finally:
        stop.set()
