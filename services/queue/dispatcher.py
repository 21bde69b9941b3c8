"""Wakes at the next due time (or when told something earlier arrived) and dispatches in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import asyncpg

from services.runtime import Background, wait_or_timeout

from . import repository as repo
from .operations import QueueOperations

log = logging.getLogger("autopost.queue.dispatcher")

ERROR_PAUSE_SECONDS = 1.0


class Dispatcher(Background):
    task_name = "dispatcher"

    def __init__(self, ops: QueueOperations, dsn: str, on_dispatched: "asyncio.Event"):
        self.ops = ops
        self.dsn = dsn
        self.wake = asyncio.Event()
        self.on_dispatched = on_dispatched
        self._listener: asyncpg.Connection | None = None
        self.last_progress: float = 0.0

    async def start(self) -> None:
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
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    await self._listen()
                self.wake.clear()
                dispatched = await self.ops.get_next_batch(self.ops.settings.dispatch_batch)
                self.last_progress = loop.time()
                if dispatched.claimed:
                    self.on_dispatched.set()
                if dispatched.full:
                    continue  # more may be due already
                await self._sleep_until_next_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch failed; retrying")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)

    async def _sleep_until_next_due(self) -> None:
        async with self.ops.pool.acquire() as conn:
            # a held-back platform's targets wait for results to come in, which wake us (NOTIFY)
            next_due: datetime | None = await repo.next_due_at(conn, self.ops.held_back)
        timeout = self.ops.settings.max_idle_wait_seconds
        if next_due is not None:
            timeout = min(timeout, max(0.0, (next_due - self.ops.clock()).total_seconds()))
        if timeout <= 0:
            return
        await wait_or_timeout(self.wake, timeout)
