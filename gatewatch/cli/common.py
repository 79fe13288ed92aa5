"""What every CLI command shares: the store and config from global options, output, progress."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import click

from gatewatch import api


@dataclass
class State:
    """Global options, resolved lazily so `--help` never touches the store."""

    db: str | None = None
    config_path: str | None = None
    log_format: str = "text"
    _engine: api.Engine | None = field(default=None, repr=False)
    _config: api.Config | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The store URL (--db, else GATEWATCH_DB, else ./gatewatch.db), without reading the config file."""
        return api.store_url(self.db)

    @property
    def engine(self) -> api.Engine:
        """The store, migrated on first use."""
        if self._engine is None:
            self._engine = api.open_store(self.url)
        return self._engine

    @property
    def config(self) -> api.Config:
        """The configuration in use (--config, GATEWATCH_CONFIG or ./gatewatch.yaml, and the environment)."""
        if self._config is None:
            self._config = api.load_config(self.config_path, db=self.db)
        return self._config


pass_state = click.make_pass_decorator(State)


def echo_json(value: Any) -> None:
    """Print one JSON document on stdout (dates as ISO 8601)."""
    click.echo(json.dumps(value, indent=2, default=_default, sort_keys=False))


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class Progress:
    """Progress on stderr for long work: a live line on a terminal, a line every few seconds in logs."""

    def __init__(self, label: str, total: int | None = None, every: float = 5.0, enabled: bool = True):
        self.label, self.total, self.every, self.enabled = label, total, every, enabled
        self.done = 0
        self.started = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (self.tty or now - self.last >= self.every):
            self.last = now
            self._show(end="\r" if self.tty else "\n")

    def _show(self, end: str) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        of = f"/{self.total}" if self.total else ""
        click.echo(f"{self.label}: {self.done}{of} ({self.done / elapsed:,.0f}/s)", err=True, nl=False)
        click.echo(end, err=True, nl=False)

    def finish(self) -> None:
        if self.enabled and self.done and (self.tty or time.monotonic() - self.started >= self.every):
            self._show(end="\n")
