"""The one exception tree: every error Gatewatch raises for a user to read, and its exit status.

Every package raises these (errors from libraries are translated once, where the library is
called: SQLAlchemy's in `collector.db`, an outside system's in the code that reads it). The
`gatewatch` command prints the message on one line and exits with `exit_code`; the HTTP service
answers 422 for a `ConfigError`, 503 for `StoreError`; the Lambda handler reports
`ConfigurationError` or `SystemUnavailable`.

    GatewatchError                  a problem a user can act on                     exit 2
    ├── ConfigError                 configuration or input that cannot be used       2
    │   ├── PolicyError             a gate policy file                                2
    │   ├── CanaryConfigError       a canary config                                   2
    │   ├── SloError                an SLO file                                       2
    │   └── ParameterError          CodePipeline UserParameters or a continuation     2
    ├── PayloadError                a payload that cannot be normalised: quarantined  1
    ├── StoreError                  the store cannot be reached, migrated or used     4
    ├── SourceUnavailable           an outside system (AWS, Prometheus, an SLI file)  5
    │                               could not be read or refused
    └── ActionFailed                a gate action that did not do its job: recorded with
                                    the decision, never raised past it
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "ActionFailed",
    "CanaryConfigError",
    "ConfigError",
    "GatewatchError",
    "ParameterError",
    "PayloadError",
    "PolicyError",
    "SloError",
    "SourceUnavailable",
    "StoreError",
]


class GatewatchError(Exception):
    """A problem the user can act on; the CLI prints the message and exits with `exit_code`."""

    exit_code = 2


class ConfigError(GatewatchError):
    """Invalid configuration or command-line input; the message names the field and the fix."""


class PolicyError(ConfigError):
    """A gate policy that does not fit the schema (or names a file that cannot be used)."""


class CanaryConfigError(ConfigError):
    """A canary config that does not fit the schema."""


class SloError(ConfigError):
    """An SLO file that does not fit the schema."""


class ParameterError(ConfigError):
    """CodePipeline UserParameters (or a continuation token) that cannot be used."""


class PayloadError(GatewatchError):
    """A payload that cannot be normalised: names the field and what was expected. The payload is
    archived as quarantined, so the command's outcome is 1 (something was quarantined)."""

    exit_code = 1

    def __init__(self, field: str, expected: str, got: object = ...):
        self.field = field
        self.expected = expected
        self.got = got
        msg = f"field '{field}': expected {expected}"
        if got is not ...:
            shown = repr(got)
            msg += f", got {shown[:80] + '...' if len(shown) > 80 else shown}"
        super().__init__(msg)


class StoreError(GatewatchError):
    """The store cannot be reached, migrated or used."""

    exit_code = 4


class SourceUnavailable(GatewatchError):
    """An outside system (AWS, Prometheus, an SLI data file) could not be read or refused the request."""

    exit_code = 5


class ActionFailed(GatewatchError):
    """A gate action that did not do its job; the message is what gets recorded (never a secret)."""

    exit_code = 1

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


EXIT_CODES = {
    0: "success",
    1: "the command's negative outcome (quarantined, canary fail, rollback, an alert firing)",
    2: "usage or configuration error",
    3: "hold, marginal or no data",
    4: "the store cannot be reached or migrated",
    5: "an outside system could not be read",
}
