"""`gatewatch serve`: the webhook receiver (and, later, the gate API) over HTTP."""
from __future__ import annotations

import click

from .common import State, pass_state


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@pass_state
def serve(state: State, host: str, port: int) -> None:
    """Receive webhooks over HTTP and archive every payload in the store.

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
    """
    import uvicorn

    from collector.webhooks import create_app

    app = create_app(state.engine, state.config)
    click.echo(f"gatewatch: listening on http://{host}:{port} (store {state.url.split('@')[-1]})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True)
