"""Keeps the queue's logs from growing without bound: a message id is remembered long enough for
any redelivery (Kafka's retention, a replay), an attempt long enough for anyone to ask why a
post went as it did, not forever."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from services.runtime import Background

log = logging.getLogger("autopost.queue.housekeeping")

INBOX_RETENTION_DAYS = 14  # twice Kafka's default retention
ATTEMPTS_RETENTION_DAYS = 90  # `autopost posts show` of a post a season old
INTERVAL_SECONDS = 3600.0
BATCH = 10_000  # short transactions, so pruning never holds up the consumers

# table -> the time column its age is read from (each has an index on it)
_PRUNED = {"inbox": "seen_at", "attempts": "at"}


async def prune(pool: asyncpg.Pool, table: str, retention_days: float) -> int:
    """Delete `table`'s rows older than `retention_days`, a batch at a time; returns how many."""
    column = _PRUNED[table]
    pruned = 0
    while True:
        async with pool.acquire() as conn:
            result = await conn.execute(
                f"""DELETE FROM {table} WHERE ctid IN (
                       SELECT ctid FROM {table} WHERE {column} < now() - make_interval(secs => $1) LIMIT $2)""",
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
            for table, days in (("inbox", INBOX_RETENTION_DAYS), ("attempts", ATTEMPTS_RETENTION_DAYS)):
                try:
                    if pruned := await prune(self.pool, table, days):
                        log.info("pruned %d %s rows older than %d days", pruned, table, days)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("pruning %s failed; trying again later", table)
            await asyncio.sleep(self.interval)
