"""The publishers' record of remote objects, in Postgres (table `remote_handles`), and the
claim that keeps two publishers off one target at a time (table `publish_claims`).

    async with store.journal_for(request) as journal:
        outcome = await client.publish(request, token, journal)

Every `save` is one autocommitted statement: it is durable before the client takes its next
step, which is what lets a killed publisher's successor resume (see platforms/_journal.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import asyncpg

from contracts import ErrorClass, PublishRequested, RemoteHandle

from .platforms import Checkpoint, Journal, MemoryJournal, PlatformError

log = logging.getLogger("autopost.publisher.handles")

_SAVE = """
INSERT INTO remote_handles (target_id, generation, platform, account_id, attempt, stage, kind, remote_id, extra)
SELECT $1, COALESCE((SELECT CASE WHEN stage = 'abandoned' THEN generation + 1 ELSE generation END
                     FROM remote_handles WHERE target_id = $1 ORDER BY generation DESC LIMIT 1), 1),
       $2, $3, $4, $5, $6, $7, $8
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
_CLAIM = """
INSERT INTO publish_claims AS c (target_id, owner, attempt, claimed_until)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (target_id) DO UPDATE
   SET owner = EXCLUDED.owner, attempt = EXCLUDED.attempt, claimed_until = EXCLUDED.claimed_until
   WHERE c.claimed_until < now() OR c.owner = EXCLUDED.owner
RETURNING owner
"""
_CLAIM_LEFT = "SELECT extract(epoch FROM claimed_until - now()) FROM publish_claims WHERE target_id = $1"
_RENEW = ("UPDATE publish_claims SET claimed_until = now() + make_interval(secs => $3) "
          "WHERE target_id = $1 AND owner = $2")
_RELEASE = "DELETE FROM publish_claims WHERE target_id = $1 AND owner = $2"


class JournalSource(Protocol):
    def journal_for(self, request: PublishRequested): ...  # async context manager → Journal


class PostgresJournal:
    def __init__(self, pool: asyncpg.Pool, request: PublishRequested):
        self.pool, self.request = pool, request

    async def load(self) -> Checkpoint | None:
        row = await self.pool.fetchrow(_LOAD, self.request.target_id)
        if row is None:
            return None
        handle = RemoteHandle(kind=row["kind"], id=row["remote_id"], extra=row["extra"] or {})
        return Checkpoint(row["stage"], handle, row["abandoned_reason"])

    async def save(self, stage: str, handle: RemoteHandle) -> None:
        r = self.request
        await self.pool.execute(_SAVE, r.target_id, r.platform.value, r.account_id, r.attempt, stage,
                                handle.kind, handle.id, handle.extra)

    async def abandon(self, reason: str) -> None:
        await self.pool.execute(_ABANDON, self.request.target_id, reason[:500])


class HandleStore:
    """Journals in Postgres, each used under a claim on its target that a heartbeat renews."""

    def __init__(self, pool: asyncpg.Pool, *, claim_seconds: float = 60.0, owner: str | None = None):
        self.pool = pool
        self.claim_seconds = claim_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @asynccontextmanager
    async def journal_for(self, request: PublishRequested) -> AsyncIterator[Journal]:
        await self._claim(request)
        heartbeat = asyncio.create_task(self._keep(request))
        try:
            yield PostgresJournal(self.pool, request)
        finally:
            heartbeat.cancel()
            try:
                await asyncio.shield(self.pool.execute(_RELEASE, request.target_id, self.owner))
            except Exception:  # the claim lapses by itself
                log.warning("could not release the claim on %s", request.target_id, exc_info=True)

    async def _claim(self, request: PublishRequested) -> None:
        owner = await self.pool.fetchval(_CLAIM, request.target_id, self.owner, request.attempt,
                                         float(self.claim_seconds))
        if owner is None:
            left = await self.pool.fetchval(_CLAIM_LEFT, request.target_id)
            raise PlatformError(ErrorClass.RETRYABLE, "publish_in_progress",
                                "another publisher is working on this target",
                                max(1.0, float(left or 0)))

    async def _keep(self, request: PublishRequested) -> None:
        while True:
            await asyncio.sleep(self.claim_seconds / 3)
            try:
                await self.pool.execute(_RENEW, request.target_id, self.owner, float(self.claim_seconds))
            except Exception:
                log.warning("could not renew the claim on %s", request.target_id, exc_info=True)


class MemoryJournals:
    """Journals in memory, one per target: for tests and one-off publishes."""

    def __init__(self) -> None:
        self.journals: dict[uuid.UUID, MemoryJournal] = {}

    @asynccontextmanager
    async def journal_for(self, request: PublishRequested) -> AsyncIterator[Journal]:
        yield self.journals.setdefault(request.target_id, MemoryJournal())


__all__ = ["HandleStore", "JournalSource", "MemoryJournals", "PostgresJournal"]
