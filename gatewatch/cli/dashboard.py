"""`gatewatch dashboard`: the Streamlit dashboard over the store (dashboard/app.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

import dashboard as dashboard_pkg
from gatewatch import api

from .common import State, pass_state

APP = Path(dashboard_pkg.__file__).resolve().parent / "app.py"


@click.command()
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 to share it; the dashboard has no login of its own).",
)
@pass_state
def dashboard(state: State, port: int, host: str) -> None:
    """Serve the dashboard (executive, on-call, pipelines, canary, SLOs, gate decisions) over the store.

    Runs `streamlit run dashboard/app.py` headless (through dashboard.server, which first starts the
    dashboard's worker process and imports the pages' modules) with GATEWATCH_DB and GATEWATCH_CONFIG
    set from the global options; open http://HOST:PORT in a browser. Stop it with Ctrl-C.
    """
    api.check_store(state.engine)  # reach (and migrate) the store now: a bad --db fails here with exit 4
    env = dict(os.environ, GATEWATCH_DB=state.url)
    # The server imports this installation's `dashboard` package, not a folder of that name in the
    # working directory (-P: no working directory on sys.path).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APP.parent.parent), os.environ.get("PYTHONPATH")) if p)
    source = state.config.source_path
    if source:
        env["GATEWATCH_CONFIG"] = str(Path(source).resolve())
    command = [
        sys.executable,
        "-P",
        "-m",
        "dashboard.server",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    click.echo(f"Gatewatch dashboard on http://{host}:{port} (Ctrl-C stops it)", err=True)
    api.close_stores()
    sys.stdout.flush()
    sys.stderr.flush()
    # The server replaces this process, so a supervisor's SIGTERM or Ctrl-C reaches the server itself
    # (a child would outlive this process, with its worker) and its exit status is the command's.
    os.execve(sys.executable, command, env)
