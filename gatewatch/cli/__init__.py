"""The `gatewatch` command: a thin shell over the service API (`gatewatch.api`).

Exit status: 0 success; 1 the command's negative outcome (e.g. something quarantined); 2 usage or
configuration error; 3 hold, marginal or no data; 4 the store cannot be reached or migrated; 5 an
outside system could not be read (`gatewatch.errors` maps each error to its status).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import click

from gatewatch.errors import GatewatchError
from gatewatch.logs import LOG_FORMATS, configure_logging
from gatewatch.process import use_system_allocator

from . import analytics, canary, collect, dashboard, demo, gate, notify, serve, slo, store
from .common import State

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.option("--db", metavar="URL", help="Store URL (default: $GATEWATCH_DB, else sqlite:///gatewatch.db).")
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    type=click.Path(dir_okay=False, exists=True),
    help="Configuration file (default: $GATEWATCH_CONFIG, else ./gatewatch.yaml if present).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what happens on stderr.")
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="Log lines on stderr as text, or as one JSON object per line (time, level, logger, message, "
    "request_id, gate, key, decision).",
)
@click.version_option(package_name="gatewatch")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: str | None, verbose: bool, log_format: str) -> None:
    """Gatewatch: delivery metrics, canary analysis and deployment gates for CI/CD pipelines."""
    configure_logging(logging.INFO if verbose else logging.WARNING, log_format)
    ctx.obj = State(db=db, config_path=config_path, log_format=log_format)


cli.add_command(store.db)
cli.add_command(store.ingest)
cli.add_command(store.replay)
cli.add_command(store.quarantine)
cli.add_command(analytics.dora)
cli.add_command(analytics.pipelines)
cli.add_command(collect.collect)
cli.add_command(serve.serve)
cli.add_command(demo.demo)
cli.add_command(canary.canary)
cli.add_command(gate.gate)
cli.add_command(slo.slo)
cli.add_command(notify.notify)
cli.add_command(dashboard.dashboard)


def main() -> None:
    """Console entry point: user mistakes become a message and an exit status, not a traceback."""
    use_system_allocator()
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except GatewatchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # one no command turned into a GatewatchError: most often stdout full or closed
        with contextlib.suppress(OSError, ValueError):  # nothing left to flush at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
