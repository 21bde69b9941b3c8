"""Sends what the transactions wrote to the outbox, and deletes it only once Kafka confirmed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from services.runtime import Background, Outgoing, dead_letter_for, is_transient, metrics, wait_or_timeout

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
        dead_letter_topic: str,
        batch: int = 1000,
    ):
        self.pool = pool
        self.send = send
        self.dead_letter_topic = dead_letter_topic
        self.batch = batch
        self.wake = asyncio.Event()

    @metrics.timed("relay")
    async def relay_once(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await repo.take_outbox(conn, self.batch)
            if not rows:
                return 0
            await self._send([message for _, message in rows])
            await repo.delete_outbox(conn, [row_id for row_id, _ in rows])
        return len(rows)

    async def _send(self, messages: list[Outgoing]) -> None:
        """Send the batch; if the broker refuses one of them for good (too large), send the
        others, and that one's dead letter in its place: a row left in the outbox would stop
        the relay and re-send its batch-mates forever."""
        try:
            await self.send(messages)
            return
        except Exception as exc:
            if is_transient(exc):
                raise
        for message in messages:
            try:
                await self.send([message])
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.error("the broker refuses %s for %s (%s: %s); dead-lettering it",
                          message.topic, message.key, type(exc).__name__, exc)
                await self.send([dead_letter_for(message, reason="refused_by_broker",
                                                 message=f"{type(exc).__name__}: {exc}",
                                                 consumer="queue-outbox", topic=self.dead_letter_topic)])

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
