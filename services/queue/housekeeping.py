"""Keeps the inbox from growing without bound: a message id is remembered long enough for any
redelivery (Kafka's retention, a replay), not forever."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from services.runtime import Background

log = logging.getLogger("autopost.queue.housekeeping")

INBOX_RETENTION_DAYS = 14  # twice Kafka's default retention
INTERVAL_SECONDS = 3600.0
BATCH = 10_000  # short transactions, so pruning never holds up the consumers


async def prune_inbox(pool: asyncpg.Pool, retention_days: float = INBOX_RETENTION_DAYS) -> int:
    pruned = 0
    while True:
        async with pool.acquire() as conn:
            result = await conn.execute(
                """DELETE FROM inbox WHERE ctid IN (
                       SELECT ctid FROM inbox WHERE seen_at < now() - make_interval(secs => $1) LIMIT $2)""",
                retention_days * 86400.0, BATCH,
            )
        deleted = int(result.split()[-1])
        pruned += deleted
        if deleted < BATCH:
            return pruned


class Housekeeping(Background):
    task_name = "housekeeping"

    def __init__(self, pool: asyncpg.Pool, interval: float = INTERVAL_SECONDS):
        self.pool, self.interval = pool, interval



    async def _run(self) -> None:
        while True:
            try:
                if pruned := await prune_inbox(self.pool):
                    log.info("pruned %d inbox entries", pruned)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("housekeeping failed; trying again later")
            await asyncio.sleep(self.interval)
