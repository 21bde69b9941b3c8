"""Sends what the transactions wrote to the outbox, and deletes it only once Kafka confirmed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from services.runtime import Background, Outgoing, metrics, wait_or_timeout

from . import repository as repo

log = logging.getLogger("autopost.queue.outbox")

SWEEP_SECONDS = 1.0  # also picks up rows another replica wrote and then died
ERROR_PAUSE_SECONDS = 1.0


class OutboxRelay(Background):
    task_name = "outbox-relay"

    def __init__(
        self,
        pool: asyncpg.Pool,
        send: Callable[[Sequence[Outgoing]], Awaitable[None]],
        *,
        batch: int = 1000,
    ):
        self.pool = pool
        self.send = send
        self.batch = batch
        self.wake = asyncio.Event()



    @metrics.timed("relay")
    async def relay_once(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await repo.take_outbox(conn, self.batch)
            if not rows:
                return 0
            await self.send([message for _, message in rows])
            await repo.delete_outbox(conn, [row_id for row_id, _ in rows])
        return len(rows)

    async def _run(self) -> None:
        while True:
            try:
                self.wake.clear()
                while await self.relay_once() >= self.batch:
                    pass
                await wait_or_timeout(self.wake, SWEEP_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
