"""Log output on stderr: text lines for people, or one JSON object per line (`--log-format json`) with
the time, level, logger and message, the HTTP request's id, and the fields a line names (gate, key,
decision) for a log pipeline to index. Secrets are never passed to a log call, so none reach either."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = ["FIELDS", "LOG_FORMATS", "REQUEST_ID", "JsonFormatter", "RequestIdFilter", "configure_logging"]

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# The id of the HTTP request being served (set by the server for each request), for every line it logs.
REQUEST_ID: ContextVar[str | None] = ContextVar("gatewatch_request_id", default=None)
# Fields a log call may pass with `extra=`, written as JSON fields when set.
FIELDS = ("request_id", "gate", "key", "decision", "deployment_id", "service", "source", "endpoint", "status")


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being served (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message and the set FIELDS."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: int, log_format: str = "text") -> None:
    """Log records at `level` and above to stderr, as text lines or JSON lines (`log_format`)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
