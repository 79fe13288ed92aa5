"""Errors that reach a user as a message and an exit code, never as a traceback."""
from __future__ import annotations


class GatewatchError(Exception):
    """A problem the user can fix; the CLI prints the message and exits with `exit_code`."""

    exit_code = 2


class ConfigError(GatewatchError):
    """Invalid configuration or command-line input."""


class StoreError(GatewatchError):
    """The store cannot be reached or migrated."""

    exit_code = 4


class SourceUnavailable(GatewatchError):
    """An outside system (AWS, Prometheus, ...) could not be reached or refused the request."""

    exit_code = 5


class PayloadError(ValueError):
    """A payload that cannot be normalised: names the field and what was expected."""

    def __init__(self, field: str, expected: str, got: object = ...):
        self.field = field
        self.expected = expected
        self.got = got
        msg = f"field '{field}': expected {expected}"
        if got is not ...:
            shown = repr(got)
            msg += f", got {shown[:80] + '...' if len(shown) > 80 else shown}"
        super().__init__(msg)
