"""One logging set-up: a JSON object per line with the trace and span ids, secrets scrubbed.

Every line carries `trace_id`/`span_id` of the span current when it was logged, so a log line
can be found from Jaeger and back. Scrubbing runs on the final text (message, arguments and
traceback alike): bearer tokens, Authorization headers, OAuth tokens and secrets in query
strings or JSON, the sandbox's `sandbox:<account>` tokens, and passwords in DSNs.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

import orjson
from opentelemetry import trace

from ._settings import LOG_FORMATS, LOG_LEVELS

REDACTED = "[redacted]"

_SECRET_NAMES = r"(?:access_token|refresh_token|id_token|client_secret|password|passwd|secret|api_key|apikey|token|code_verifier)"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: <any scheme> xxx, or a bare credential (header lines, dict reprs, JSON)
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:[a-z][a-z0-9._~+-]*\s+)?[^\s'\",}]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/:=-]+"), rf"\1 {REDACTED}"),
    # scheme://user:password@host → scheme://user:[redacted]@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s/]+@"), rf"\1:{REDACTED}@"),
    # key=value in query strings and forms, "key": "value" in JSON, key: value in reprs
    (re.compile(rf"(?i)(\b{_SECRET_NAMES}=)[^&\s'\"]+"), rf"\1{REDACTED}"),
    (re.compile(rf"(?i)(['\"]{_SECRET_NAMES}['\"]\s*:\s*['\"])[^'\"]*"), rf"\1{REDACTED}"),
    # DSN keyword form: password=... is covered above; the sandbox's tokens name the account
    (re.compile(r"\bsandbox:[^\s'\",}]+"), f"sandbox:{REDACTED}"),
]


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if self.service:
            entry["service"] = self.service
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return orjson.dumps(entry, default=str).decode()


class ScrubbingTextFormatter(logging.Formatter):
    """Plain text for people at a terminal (`autopost dev`), scrubbed the same way."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line += f" trace_id={context.trace_id:032x}"
        return scrub(line)




def configure_logging(
    level: str = "INFO", *, service: str | None = None, fmt: str = "json", stream: TextIO | None = None
) -> None:
    """Replace the root handlers with one that writes `fmt` ("json" or "text") to stderr.
    Both and the level are taken in any case; any other raises ValueError, naming what is taken."""
    fmt, level = fmt.strip().lower(), level.strip().upper()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(LOG_FORMATS)}")
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(LOG_LEVELS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else ScrubbingTextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
