"""The publishers' record of remote objects, in Postgres (table `remote_handles`), and the
claim that keeps two publishers off one target at a time (table `publish_claims`).

    async with store.journal_for(request) as journal:
        outcome = await client.publish(request, token, journal)

Every `save` is durable (autocommitted) before the client takes its next step, which is what
lets a killed publisher's successor resume (see platforms/_journal.py). The saves that fall at
one moment, across a batch's targets, share one statement.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg

from contracts import ErrorClass, PublishRequested, RemoteHandle
from services.runtime import Coalesced

from .platforms import Checkpoint, Journal, MemoryJournal, PlatformError

# the code of a publish refused because another publisher holds the target's claim
PUBLISH_IN_PROGRESS = "publish_in_progress"

log = logging.getLogger("autopost.publisher.handles")

# Every save of the moment (the batch's targets, each at its own step) in one statement; at most
# one per target (a target's steps are sequential), so ON CONFLICT never meets a row twice.
_SAVE = """
INSERT INTO remote_handles (target_id, generation, platform, account_id, attempt, stage, kind, remote_id, extra)
SELECT w.target_id,
       COALESCE((SELECT CASE WHEN stage = 'abandoned' THEN generation + 1 ELSE generation END
                 FROM remote_handles r WHERE r.target_id = w.target_id ORDER BY generation DESC LIMIT 1), 1),
       w.platform, w.account_id, w.attempt, w.stage, w.kind, w.remote_id, w.extra
FROM jsonb_to_recordset($1::jsonb) AS w (target_id uuid, platform text, account_id text, attempt integer,
                                        stage text, kind text, remote_id text, extra jsonb)
ON CONFLICT (target_id, generation) DO UPDATE
   SET attempt = EXCLUDED.attempt, stage = EXCLUDED.stage, kind = EXCLUDED.kind,
       remote_id = EXCLUDED.remote_id, extra = EXCLUDED.extra, updated_at = now()
"""
_LOAD = """
SELECT stage, kind, remote_id, extra, abandoned_reason FROM remote_handles
WHERE target_id = $1 ORDER BY generation DESC LIMIT 1
"""
_ABANDON = """
UPDATE remote_handles SET stage = 'abandoned', abandoned_reason = $2, updated_at = now()
WHERE target_id = $1 AND stage <> 'abandoned'
  AND generation = (SELECT max(generation) FROM remote_handles WHERE target_id = $1)
"""
_SET_ASIDE_INTENTS = """
UPDATE remote_handles r SET stage = 'abandoned', abandoned_reason = $2, updated_at = now()
WHERE r.target_id = ANY($1::uuid[]) AND r.stage = 'intent'
  AND r.generation = (SELECT max(generation) FROM remote_handles WHERE target_id = r.target_id)
"""
# Claim the targets not claimed by someone else (or claimed by us), and read each one's
# latest remote handle, in one round trip for every target that arrived together.
_CLAIM_AND_LOAD = """
WITH wanted AS (
    SELECT * FROM unnest($1::uuid[], $2::integer[]) AS w (target_id, attempt)
), claimed AS (
    INSERT INTO publish_claims AS c (target_id, owner, attempt, claimed_until)
    SELECT target_id, $3, attempt, now() + make_interval(secs => $4) FROM wanted
    ON CONFLICT (target_id) DO UPDATE
       SET owner = EXCLUDED.owner, attempt = EXCLUDED.attempt, claimed_until = EXCLUDED.claimed_until
       WHERE c.claimed_until < now() OR c.owner = EXCLUDED.owner
    RETURNING c.target_id
)
SELECT w.target_id, cl.target_id IS NOT NULL AS claimed,
       extract(epoch FROM held.claimed_until - now()) AS left_seconds,
       h.stage, h.kind, h.remote_id, h.extra, h.abandoned_reason
FROM wanted w
LEFT JOIN claimed cl ON cl.target_id = w.target_id
LEFT JOIN publish_claims held ON held.target_id = w.target_id
LEFT JOIN LATERAL (SELECT stage, kind, remote_id, extra, abandoned_reason FROM remote_handles r
                   WHERE r.target_id = w.target_id ORDER BY generation DESC LIMIT 1) h ON true
"""
_RENEW = ("UPDATE publish_claims SET claimed_until = now() + make_interval(secs => $3) "
          "WHERE owner = $2 AND target_id = ANY($1::uuid[])")
_RELEASE = "DELETE FROM publish_claims WHERE owner = $2 AND target_id = ANY($1::uuid[])"

class JournalSource(Protocol):
    def journal_for(self, request: PublishRequested): ...  # async context manager → Journal


_NOT_READ = object()


def _checkpoint(row: Any) -> Checkpoint | None:
    if row is None or row["stage"] is None:
        return None
    handle = RemoteHandle(kind=row["kind"], id=row["remote_id"], extra=row["extra"] or {})
    return Checkpoint(row["stage"], handle, row["abandoned_reason"])


class PostgresJournal:
    def __init__(self, pool: asyncpg.Pool, request: PublishRequested, save: Callable[[dict], Awaitable[None]],
                 prefetched: Any = _NOT_READ):
        self.pool, self.request = pool, request
        self._save = save  # the store's: durable when it returns, shared with the batch's other saves
        self._prefetched = prefetched  # read together with the claim: the first load is free

    async def load(self) -> Checkpoint | None:
        if self._prefetched is not _NOT_READ:
            checkpoint, self._prefetched = self._prefetched, _NOT_READ
            return checkpoint
        return _checkpoint(await self.pool.fetchrow(_LOAD, self.request.target_id))

    async def save(self, stage: str, handle: RemoteHandle) -> None:
        r = self.request
        await self._save({"target_id": r.target_id, "platform": r.platform.value, "account_id": r.account_id,
                          "attempt": r.attempt, "stage": stage, "kind": handle.kind, "remote_id": handle.id,
                          "extra": handle.extra})

    async def abandon(self, reason: str) -> None:
        await self.pool.execute(_ABANDON, self.request.target_id, reason[:500])


class HandleStore:
    """Journals in Postgres, each used under a claim on its target.

    The targets of one batch are claimed (and their handles read) in one query, and released
    in one; one heartbeat renews every claim this process holds. The saves made at one moment
    are one statement: each caller still waits until its own is durable before its next step.
    """

    def __init__(self, pool: asyncpg.Pool, *, claim_seconds: float = 60.0, owner: str | None = None):
        self.pool = pool
        self.claim_seconds = claim_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held: set[uuid.UUID] = set()
        self._claim = Coalesced(self._claim_batch)
        self._release = Coalesced(self._release_batch)
        self._save = Coalesced(self._save_batch)
        self._heartbeat: asyncio.Task | None = None

    @asynccontextmanager
    async def journal_for(self, request: PublishRequested) -> AsyncIterator[Journal]:
        row = await self._claim(request)
        if not row["claimed"]:
            # pending: not this post's failure, so the queue comes back when the claim would
            # lapse without spending an attempt (a late success of the holder is kept)
            raise PlatformError(ErrorClass.RETRYABLE, PUBLISH_IN_PROGRESS,
                                "another publisher is working on this target",
                                max(1.0, float(row["left_seconds"] or 0)), pending=True)
        self.held.add(request.target_id)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._keep())
        try:
            yield PostgresJournal(self.pool, request, self._save, _checkpoint(row))
        finally:
            self.held.discard(request.target_id)
            try:
                await asyncio.shield(self._release(request.target_id))
            except Exception:  # the claim lapses by itself
                log.warning("could not release the claim on %s", request.target_id, exc_info=True)

    async def _claim_batch(self, requests: list[PublishRequested]) -> list[Any]:
        # one target twice at once cannot happen (one account's requests run in order); if it
        # did, only its first request would get the claim
        first = list({r.target_id: r for r in reversed(requests)}.values())
        rows = await self.pool.fetch(_CLAIM_AND_LOAD, [r.target_id for r in first], [r.attempt for r in first],
                                     self.owner, float(self.claim_seconds))
        by_target = {row["target_id"]: row for row in rows}
        seen: set[uuid.UUID] = set()
        results = []
        for r in requests:
            row = by_target[r.target_id]
            results.append(row if r.target_id not in seen else {**dict(row), "claimed": False})
            seen.add(r.target_id)
        return results

    async def _save_batch(self, rows: list[dict]) -> list[None]:
        # one target twice at once cannot happen (its steps are sequential); if it did, the later
        # save is the one that stands, as it would be one statement after the other
        latest = list({row["target_id"]: row for row in rows}.values())
        await self.pool.execute(_SAVE, latest)
        return [None] * len(rows)

    async def _release_batch(self, target_ids: list[uuid.UUID]) -> list[None]:
        await self.pool.execute(_RELEASE, list(set(target_ids)), self.owner)
        return [None] * len(target_ids)

    async def _keep(self) -> None:
        while self.held:
            await asyncio.sleep(self.claim_seconds / 3)
            if not self.held:  # released while it slept: nothing to renew
                return
            try:
                await self.pool.execute(_RENEW, list(self.held), self.owner, float(self.claim_seconds))
            except Exception:
                log.warning("could not renew %d claims", len(self.held), exc_info=True)


async def set_aside_reviewed_intents(conn: asyncpg.Connection, target_ids: Sequence[uuid.UUID]) -> None:
    """An operator looked on the platform for these targets' unanswered inits and did not find
    the posts: their open intents are abandoned, so that the next try sends a new init."""
    await conn.execute(_SET_ASIDE_INTENTS, list(target_ids), "not on the platform: an operator retried it")


class MemoryJournals:
    """Journals in memory, one per target: for tests and one-off publishes."""

    def __init__(self) -> None:
        self.journals: dict[uuid.UUID, MemoryJournal] = {}

    @asynccontextmanager
    async def journal_for(self, request: PublishRequested) -> AsyncIterator[Journal]:
        yield self.journals.setdefault(request.target_id, MemoryJournal())


__all__ = ["HandleStore", "JournalSource", "MemoryJournals", "PostgresJournal", "set_aside_reviewed_intents"]
