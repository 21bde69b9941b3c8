"""A service started while its database or broker is away waits for them instead of exiting.

Kubernetes would restart a service that exits, with a growing back-off; a service started by
`autopost dev` or the chaos run while Postgres is cut would stay dead. Either way, waiting a
while with a clear log line is the better start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._failures import is_transient

log = logging.getLogger("autopost.startup")

T = TypeVar("T")

STARTUP_WAIT_SECONDS = 300.0
FIRST_PAUSE_SECONDS = 0.5
MAX_PAUSE_SECONDS = 5.0


async def when_reachable(what: str, attempt: Callable[[], Awaitable[T]],
                         wait_seconds: float = STARTUP_WAIT_SECONDS) -> T:
    """`attempt()` again while it fails for an outage (see `is_transient`), up to `wait_seconds`;
    any other failure, or the last one after that, is raised."""
    deadline = time.monotonic() + wait_seconds
    pause = FIRST_PAUSE_SECONDS
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + pause > deadline:
                raise
            log.warning("%s unreachable (%s); trying again in %.1fs", what, exc, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_SECONDS)
