"""Wakes at the next due time (or when told something earlier arrived) and dispatches in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

import asyncpg

from services.runtime import Background, wait_or_timeout

from . import repository as repo
from .operations import QueueOperations

log = logging.getLogger("autopost.queue.dispatcher")

ERROR_PAUSE_SECONDS = 1.0
STALL_SECONDS = 300.0


class Dispatcher(Background):
    """Its health, as /readyz and /livez see it (see `progressing` and `wedged`):

    - A round that fails (the database away or read-only, a row it cannot write) is retried
      after a pause; while no round has completed for `stall_seconds` the service is unready,
      and says why. A restart would not mend that, and would stop the results and the outbox
      too, which may still work.
    - A round that has not returned for `stall_seconds` is wedged (each of its queries is bounded
      by the pool's command timeout; waiting on the pool is not): only a restart mends that.

    A dispatcher with nothing due still completes a round every `max_idle_wait_seconds`, so no
    round for that long means no progress whether or not targets are due; `stall_seconds` is
    kept above twice that wait."""

    task_name = "dispatcher"

    def __init__(self, ops: QueueOperations, dsn: str, on_dispatched: "asyncio.Event",
                 *, stall_seconds: float = STALL_SECONDS):
        self.ops = ops
        self.dsn = dsn
        self.wake = asyncio.Event()
        self.on_dispatched = on_dispatched
        self._listener: asyncpg.Connection | None = None
        self.stall_seconds = max(stall_seconds, 2 * ops.settings.max_idle_wait_seconds)
        # monotonic times: the last round that committed (the start counts, so that a dispatcher
        # that never completes one is seen from then), the round under way (None while waiting),
        # and since when rounds have been failing, with the last error
        self.last_progress: float = time.monotonic()
        self.round_started: float | None = None
        self.failing_since: float | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        self.last_progress = time.monotonic()
        await self._listen()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    async def _listen(self) -> None:
        """LISTEN on a connection of its own: other replicas' new work wakes this one."""
        with contextlib.suppress(Exception):
            if self._listener is not None:
                await self._listener.close()
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(repo.NOTIFY_CHANNEL, lambda *_: self.wake.set())

    async def _run(self) -> None:
        while True:
            self.round_started = time.monotonic()
            try:
                if self._listener is None or self._listener.is_closed():
                    await self._listen()
                self.wake.clear()
                dispatched = await self.ops.get_next_batch(self.ops.settings.dispatch_batch)
                self._progressed()
                if dispatched.claimed:
                    self.on_dispatched.set()
                if dispatched.full:
                    continue  # more may be due already
                timeout = await self._time_to_next_due()
                self.round_started = None
                if timeout > 0:
                    await wait_or_timeout(self.wake, timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.round_started = None
                self._failed(exc)
                log.exception("dispatch failed; retrying")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)

    def _progressed(self) -> None:
        self.last_progress = time.monotonic()
        self.failing_since, self.last_error = None, None

    def _failed(self, exc: Exception) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]

    async def _time_to_next_due(self) -> float:
        async with self.ops.pool.acquire() as conn:
            # a held-back platform's targets wait for results to come in, which wake us (NOTIFY)
            next_due: datetime | None = await repo.next_due_at(conn, self.ops.held_back)
        timeout = self.ops.settings.max_idle_wait_seconds
        if next_due is not None:
            timeout = min(timeout, max(0.0, (next_due - self.ops.clock()).total_seconds()))
        return timeout

    def progressing(self) -> tuple[bool, dict[str, Any]]:
        """For /readyz: running, and a round completed within `stall_seconds`."""
        now = time.monotonic()
        idle = now - self.last_progress
        detail: dict[str, Any] = {"running": self.alive, "last_round_seconds_ago": round(idle, 1)}
        if self.round_started is not None:
            detail["round_running_seconds"] = round(now - self.round_started, 1)
        if self.last_error is not None and self.failing_since is not None:
            detail["failing_for_seconds"] = round(now - self.failing_since, 1)
            detail["last_error"] = self.last_error
        return self.alive and idle <= self.stall_seconds, detail

    def wedged(self) -> str | None:
        """For /livez: why only a restart will help (the task ended, or a round never returns)."""
        if not self.alive:
            return "not running"
        if self.round_started is not None and time.monotonic() - self.round_started > self.stall_seconds:
            return f"a round has not returned for {time.monotonic() - self.round_started:.0f}s"
        return None
