"""Sends post.planned again for posts the queue has not stored: the broker may lose a message it
acknowledged, and Postgres, not Kafka, is the record of what was planned.

Every sent post.planned is kept (in the planning transaction) until the queue's `posts` holds its
post. A post still missing after `resend_after_seconds` is sent again, then after twice as long,
and so on; after `resend_max` sends it goes to the dead letters with its payload, for an
operator to look at and replay, and the planner stops sending it. The queue stores a post once,
so a post sent again while the first copy was only late changes nothing.

A post given up frees its slots in the same transaction (`store.release_given_up`): it will not
go out, and its accounts' spacing and daily caps are for posts that will. If its dead letter is
replayed and the queue stores it, its slots count again (`store.calendars`). What it was planned
to post stays recorded (`store.record_contents`): an event reusing its upstream id with other
content is still refused. The queue's housekeeping later prunes the slots of posts neither sent
nor stored (`planner_slots`), and then that record (`planner_post_contents`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone

import asyncpg

from contracts import Topics
from services.runtime import Background, Outgoing, PlannerSettings, dead_letter_for, metrics

from . import store

log = logging.getLogger("autopost.planner.recovery")

BATCH = 1000


class PlannedRecovery(Background):
    task_name = "planned-recovery"

    def __init__(
        self,
        pool: asyncpg.Pool,
        send: Callable[[Sequence[Outgoing]], Awaitable[None]],
        settings: PlannerSettings,
        dead_letter_topic: str = Topics.DEAD_LETTER,
        clock: Callable[[], datetime] | None = None,
    ):
        self.pool, self.send, self.settings = pool, send, settings
        self.dead_letter_topic = dead_letter_topic
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    async def recover_once(self) -> int:
        """Forget what the queue has, send again what is overdue; returns how many were sent."""
        async with self.pool.acquire() as conn:
            await store.forget_queued(conn)
        sent = 0
        while True:
            now = self.clock()
            async with self.pool.acquire() as conn, conn.transaction():
                overdue = await store.take_unconfirmed(conn, now, BATCH)
                if not overdue:
                    return sent
                again = [u for u in overdue if u.resends < self.settings.resend_max]
                given_up = [u for u in overdue if u.resends >= self.settings.resend_max]
                # sent before the rows change: if Kafka refuses, the transaction rolls back and
                # the next round tries again
                await self.send([Outgoing(u.topic, str(u.post_id), u.payload, u.headers) for u in again]
                                + [self._dead_letter(u) for u in given_up])
                await store.mark_resent(conn, [(u.post_id, now + self._backoff(u.resends + 1)) for u in again])
                await store.forget(conn, [u.post_id for u in given_up])
                await store.release_given_up(conn, [u.post_id for u in given_up])
            metrics.PLANNED_RESENT.inc(len(again))
            for u in given_up:
                log.error("post %s: the queue never stored it after %d sends; dead-lettered, its slots released",
                          u.post_id, u.resends + 1)
            sent += len(again)
            if len(overdue) < BATCH:
                return sent

    def _backoff(self, sends: int) -> timedelta:
        return timedelta(seconds=self.settings.resend_after_seconds * 2 ** sends)

    def _dead_letter(self, u: store.Unconfirmed) -> Outgoing:
        return dead_letter_for(
            Outgoing(u.topic, str(u.post_id), u.payload, u.headers), reason="post_not_queued",
            message=f"sent {u.resends + 1} times; the queue never stored post {u.post_id}",
            consumer="planner.recovery", topic=self.dead_letter_topic,
        )

    async def _run(self) -> None:
        while True:
            try:
                if sent := await self.recover_once():
                    log.warning("sent post.planned again for %d posts the queue has not stored", sent)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recovering planned posts failed; trying again later")
            await asyncio.sleep(self.settings.recovery_interval_seconds)
