"""The queue's length, computed from Postgres every few seconds into the `autopost_queue_*` gauges,
with the other figures only Postgres knows: accounts to reconnect and app-wide quota left.

One grouped query over the unfinished targets (the `targets_status` index keeps finished ones
out of it), a count of the outbox, of the accounts needing reconnection (a partial index) and
the day's counters of the app-wide quotas. Every replica computes the same figures: read them
with `max by (platform, ...)` (`min by` for quota left).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import asyncpg

from services.quotas import QuotaRule, app_wide_quota_left
from services.runtime import Background, metrics

from .domain import TargetStatus

log = logging.getLogger("autopost.queue.stats")

UNFINISHED = [s.value for s in (TargetStatus.PENDING, TargetStatus.RETRY_WAIT, TargetStatus.DEFERRED,
                                TargetStatus.PUBLISHING, TargetStatus.PROCESSING)]
WAITING = {TargetStatus.PENDING.value, TargetStatus.RETRY_WAIT.value, TargetStatus.DEFERRED.value}

_QUERY = """
SELECT platform, status, count(*) AS n,
       count(*) FILTER (WHERE due_at <= now()) AS due,
       extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())) AS oldest_due_age
FROM targets WHERE status = ANY($1::text[])
GROUP BY platform, status
"""


_RECONNECT = "SELECT platform, count(*) AS n FROM accounts WHERE status = 'needs_reconnect' GROUP BY platform"


async def collect(conn: asyncpg.Connection, platforms: list[str], quotas: Sequence[QuotaRule] = ()) -> None:
    rows = await conn.fetch(_QUERY, UNFINISHED)
    outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    reconnect = {r["platform"]: r["n"] for r in await conn.fetch(_RECONNECT)}
    for platform in platforms:
        metrics.ACCOUNTS_NEEDING_RECONNECT.labels(platform).set(reconnect.get(platform, 0))
    for rule, left in await app_wide_quota_left(conn, quotas, datetime.now(timezone.utc)):
        metrics.QUOTA_REMAINING.labels(rule.platform, rule.bucket).set(left)
    counts = {(p, s): 0 for p in platforms for s in UNFINISHED}
    due = dict.fromkeys(platforms, 0)
    scheduled = dict.fromkeys(platforms, 0)
    oldest = dict.fromkeys(platforms, 0.0)
    for r in rows:
        platform, status = r["platform"], r["status"]
        counts[(platform, status)] = r["n"]
        if status in WAITING:
            due[platform] = due.get(platform, 0) + r["due"]
            scheduled[platform] = scheduled.get(platform, 0) + r["n"] - r["due"]
            oldest[platform] = max(oldest.get(platform, 0.0), float(r["oldest_due_age"] or 0.0))
    for (platform, status), n in counts.items():
        metrics.QUEUE_TARGETS.labels(platform, status).set(n)
    for platform in due:
        metrics.QUEUE_DUE.labels(platform).set(due[platform])
        metrics.QUEUE_SCHEDULED.labels(platform).set(scheduled[platform])
        metrics.QUEUE_OLDEST_DUE_AGE.labels(platform).set(oldest[platform])
    metrics.OUTBOX_MESSAGES.set(outbox)
    metrics.QUEUE_STATS_TIMESTAMP.set(time.time())


class QueueStats(Background):
    task_name = "queue-stats"

    def __init__(self, pool: asyncpg.Pool, interval: float, platforms: list[str], quotas: Sequence[QuotaRule] = ()):
        self.pool = pool
        self.interval = interval
        self.platforms = platforms
        self.quotas = quotas

    async def start(self) -> None:
        if self.interval > 0:
            await super().start()

    async def _run(self) -> None:
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await collect(conn, self.platforms, self.quotas)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: readiness says so
                log.warning("could not compute the queue's length: %s", exc)
            await asyncio.sleep(self.interval)


# Moves worth counting: finished (success and failure rates) and sent back to wait (retries).
COUNTED = frozenset({TargetStatus.POSTED, TargetStatus.FAILED, TargetStatus.CANCELLED,
                     TargetStatus.RETRY_WAIT, TargetStatus.DEFERRED})


def moves(changes: Iterable[tuple[str, TargetStatus, TargetStatus]]) -> Counter[tuple[str, str]]:
    """(platform, new status) counts of the (platform, old, new) status changes worth counting."""
    return Counter((platform, new.value) for platform, old, new in changes if new is not old and new in COUNTED)


def record_transitions(counts: Counter[tuple[str, str]]) -> None:
    """After the transaction committed."""
    for (platform, status), n in counts.items():
        metrics.TARGET_TRANSITIONS.labels(platform, status).inc(n)
