"""The publishers' record of remote objects in Postgres, and the claim on a target."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest

from contracts import ContentType, ErrorClass, MediaRef, Platform, PublishRequested, RemoteHandle
from harness import batch_sizes
from services.publishers.handles import HandleStore
from services.publishers.platforms import ABANDONED, ACCEPTED, CREATED, INTENT, PlatformError
from services.runtime import build_tracer_provider, open_database

pytestmark = pytest.mark.integration


def request(attempt: int = 1, target_id: uuid.UUID | None = None) -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=target_id or uuid.uuid4(), post_id=uuid.uuid4(),
        platform=Platform.TIKTOK, account_id="acct", attempt=attempt, content_type=ContentType.VIDEO,
        caption="c", media=[MediaRef(url="https://cdn.example/v.mp4")], scheduled_time=datetime.now(timezone.utc),
    )


@pytest.fixture
async def pool(database_url):
    pool = await open_database(database_url, build_tracer_provider("test"))
    try:
        yield pool
    finally:
        await pool.close()


async def test_generations_are_saved_at_once_and_read_back_by_a_new_process(pool, database_url):
    first = request()
    async with HandleStore(pool).journal_for(first) as journal:
        assert await journal.load() is None
        await journal.save(INTENT, RemoteHandle(kind="tiktok.publish_id", id="", extra={"source": "FILE_UPLOAD"}))
        await journal.save(CREATED, RemoteHandle(kind="tiktok.publish_id", id="p1",
                                                 extra={"uploadUrl": "https://up/1", "videoSize": 10}))
    # another process, its own pool: what was saved is there
    other = await open_database(database_url, build_tracer_provider("test"))
    try:
        async with HandleStore(other).journal_for(request(2, first.target_id)) as journal:
            checkpoint = await journal.load()
            assert (checkpoint.stage, checkpoint.handle.id) == (CREATED, "p1")
            assert checkpoint.handle.extra == {"uploadUrl": "https://up/1", "videoSize": 10}
            await journal.abandon("FAILED: internal")
            assert (await journal.load()).stage == ABANDONED
            await journal.save(ACCEPTED, RemoteHandle(kind="tiktok.publish_id", id="p2"))
    finally:
        await other.close()
    rows = await pool.fetch("SELECT generation, stage, remote_id, attempt, abandoned_reason FROM remote_handles "
                            "WHERE target_id = $1 ORDER BY generation", first.target_id)
    assert [tuple(r) for r in rows] == [(1, "abandoned", "p1", 1, "FAILED: internal"), (2, "accepted", "p2", 2, None)]


async def test_a_second_publisher_keeps_off_a_claimed_target_until_the_claim_lapses(pool):
    target = request()
    alive, other = HandleStore(pool, claim_seconds=1.2), HandleStore(pool, claim_seconds=1.2)
    async with alive.journal_for(target):
        with pytest.raises(PlatformError) as raised:
            async with other.journal_for(request(2, target.target_id)):
                pass
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "publish_in_progress")
        assert raised.value.pending, "no attempt spent: the holder may yet succeed"
        assert 0 < raised.value.retry_after <= 1.2
        await asyncio.sleep(1.5)  # longer than the claim: the heartbeat keeps it
        with pytest.raises(PlatformError):
            async with other.journal_for(request(2, target.target_id)):
                pass
    async with other.journal_for(request(2, target.target_id)):  # released on the way out
        pass

    # a publisher killed while it held the claim: nobody releases it, it lapses
    dead = request()
    await pool.execute("INSERT INTO publish_claims VALUES ($1, 'dead', 1, now() + interval '0.3 seconds')",
                       dead.target_id)
    with pytest.raises(PlatformError):
        async with other.journal_for(dead):
            pass
    await asyncio.sleep(0.4)
    async with other.journal_for(dead):
        pass
    assert await pool.fetchval("SELECT count(*) FROM publish_claims") == 0


async def test_saves_of_a_batchs_targets_at_one_moment_are_one_statement_each_kept(pool):
    store = HandleStore(pool)
    statements = batch_sizes(store._save)
    abandoned = request()
    async with store.journal_for(abandoned) as journal:
        await journal.save(CREATED, RemoteHandle(kind="tiktok.publish_id", id="old"))
        await journal.abandon("FAILED: internal")
    statements.clear()
    requests = [request(), request(), request(2, abandoned.target_id)]

    async def publish(r: PublishRequested) -> None:
        async with store.journal_for(r) as journal:
            await journal.save(CREATED, RemoteHandle(kind="tiktok.publish_id", id=f"c-{r.target_id}",
                                                     extra={"n": r.attempt}))
            await journal.save(ACCEPTED, RemoteHandle(kind="tiktok.publish_id", id=f"a-{r.target_id}"))

    await asyncio.gather(*(publish(r) for r in requests))
    assert statements == [3, 3], "each step of the three targets in one statement"
    for r in requests:
        rows = await pool.fetch("SELECT generation, stage, remote_id FROM remote_handles WHERE target_id = $1 "
                                "ORDER BY generation", r.target_id)
        expected = [(1, "accepted", f"a-{r.target_id}")] if r is not requests[2] else \
            [(1, "abandoned", "old"), (2, "accepted", f"a-{r.target_id}")]
        assert [tuple(row) for row in rows] == expected
