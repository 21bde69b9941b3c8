"""Keeping secrets out of logs and messages.

Instagram's token exchange and refresh put the token in the query string (platforms.md §2.1),
and httpx logs every request URL at INFO: the filter rewrites those records.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_SECRET_PARAMS = re.compile(
    r"(?<=[?&])(access_token|refresh_token|client_secret|code|fb_exchange_token|ig_exchange_token)=[^&\s\"'#]*")


def redact_query(text: str) -> str:
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def scrub(text: str, *secrets: str | None) -> str:
    """`text` without any of `secrets`, nor secret-looking query parameters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return redact_query(text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_query(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactSecrets()


def redact_http_logs() -> None:
    """Filter the loggers that write request URLs (idempotent: the filter is added once)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
