"""A target whose stored row no longer makes a valid request fails alone, told, and every other
due target is dispatched in the same round: one bad row must not stop the dispatcher."""

from datetime import datetime, timedelta, timezone

import pytest
from opentelemetry import trace

from contracts import AdminAlert, AlertKind, Platform, PublishRequested, SlotChange, SlotChanged, Topics
from services.queue import repository as repo
from services.queue.operations import QueueOperations
from services.runtime import QueueSettings, apply_migrations, create_pool
from harness import planned_post

pytestmark = pytest.mark.integration

BROKEN_CONTENT = {"contentType": "video", "media": []}  # media: at least one
BROKEN_HANDLE = {"id": "no kind"}


async def _outbox(conn) -> dict[str, list[bytes]]:
    by_topic: dict[str, list[bytes]] = {}
    for row in await conn.fetch("SELECT topic, payload FROM outbox ORDER BY id"):
        by_topic.setdefault(row["topic"], []).append(bytes(row["payload"]))
    return by_topic


async def test_a_target_whose_request_cannot_be_built_fails_alone_and_the_others_are_dispatched(database_url):
    now = datetime.now(timezone.utc)
    bad = planned_post("unreadable", platforms=[Platform.TIKTOK], at=now - timedelta(minutes=10))
    good = planned_post("readable", platforms=[Platform.TIKTOK, Platform.YOUTUBE], at=now - timedelta(minutes=1))
    following = planned_post("following", platforms=[Platform.INSTAGRAM], at=now - timedelta(minutes=5))
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            await repo.insert_planned(conn, [bad, good, following], [{}, {}, {}])
            # stored content that no longer validates (written by an older version, edited by hand)
            await conn.execute("UPDATE posts SET content = $2::jsonb WHERE post_id = $1", bad.post_id, BROKEN_CONTENT)
            # accepted by the platform, its status check due, its stored handle unreadable
            await conn.execute(
                """UPDATE targets SET status = 'processing', attempt = 1, remote_handle = $2::jsonb,
                          processing_since = $3, due_at = $3 WHERE post_id = $1""",
                following.post_id, BROKEN_HANDLE, now - timedelta(minutes=4))
        ops = QueueOperations(pool, QueueSettings(), trace.get_tracer("test"), lambda name: name)

        # the oldest due row is the bad one: every round claims it first
        assert (await ops.get_next_batch(2)).claimed == 4

        async with pool.acquire() as conn:
            rows = {r["target_id"]: r for r in await conn.fetch("SELECT * FROM targets")}
            attempts = await conn.fetch("SELECT target_id, outcome, error_code, message FROM attempts")
            outbox = await _outbox(conn)
        (bad_id,), (processing_id,) = [t.target_id for t in bad.targets], [t.target_id for t in following.targets]
        for target_id in (bad_id, processing_id):
            row = rows[target_id]
            assert row["status"] == "failed" and row["due_at"] is None
            assert row["last_error"]["code"] == "unreadable_target"
            assert row["last_error"]["errorClass"] == "permanent"
        assert "ValidationError" in rows[bad_id]["last_error"]["message"]
        assert "media" in rows[bad_id]["last_error"]["message"]
        for target in good.targets:
            assert rows[target.target_id]["status"] == "publishing", "dispatched despite the bad row"
        assert {(a["target_id"], a["outcome"], a["error_code"]) for a in attempts} == {
            (bad_id, "failed", "unreadable_target"), (processing_id, "failed", "unreadable_target")}

        requests = [PublishRequested.from_bytes(v) for p in Platform
                    for v in outbox.get(Topics.publish_requested(p), [])]
        assert sorted(r.target_id for r in requests) == sorted(t.target_id for t in good.targets)
        alerts = {a.target_id: a for a in map(AdminAlert.from_bytes, outbox[Topics.ALERTS])}
        assert set(alerts) == {bad_id, processing_id}
        alert = alerts[bad_id]
        assert alert.kind is AlertKind.PUBLISH_FAILED and alert.reason == "unreadable_target"
        assert alert.platform is Platform.TIKTOK and alert.post_id == bad.post_id
        assert "unreadable" in alert.message and "cannot be dispatched" in alert.message
        assert alert.last_error["code"] == "unreadable_target"
        slots = [SlotChanged.from_bytes(v) for v in outbox[Topics.SLOT_CHANGED]]
        assert {(s.target_id, s.change) for s in slots} == {(bad_id, SlotChange.RELEASED),
                                                            (processing_id, SlotChange.RELEASED)}

        # nothing is due any more: the next round does not meet the bad row again
        assert (await ops.get_next_batch(2)).claimed == 0
    finally:
        await pool.close()


async def test_a_posted_target_whose_engagement_request_cannot_be_built_stays_posted_and_stops_collecting(
    database_url
):
    now = datetime.now(timezone.utc)
    post = planned_post("posted-unreadable", platforms=[Platform.YOUTUBE], at=now - timedelta(hours=2))
    published = now - timedelta(seconds=3610)  # its first collection (at 1 h) is due
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            await repo.insert_planned(conn, [post], [{}])
            await conn.execute(
                """UPDATE targets SET status = 'posted', attempt = 1, remote_handle = $2::jsonb,
                          url = 'https://youtube.test/v', published_at = $3, due_at = $4 WHERE post_id = $1""",
                post.post_id, BROKEN_HANDLE, published, published + timedelta(hours=1))
        ops = QueueOperations(pool, QueueSettings(), trace.get_tracer("test"), lambda name: name)
        assert (await ops.get_next_batch(10)).claimed == 1
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM targets")
            outbox = await _outbox(conn)
        assert row["status"] == "posted" and row["due_at"] is None, "published: parked, not failed"
        assert row["last_error"]["code"] == "unreadable_target"
        assert outbox == {}, "no request, no alert, and its slot stays taken"
    finally:
        await pool.close()


async def test_most_of_a_round_unreadable_at_once_fails_none_of_them(database_url):
    """Every stored post failing to validate at once is a change of code or contract, not bad
    rows: the round changes nothing (and the dispatcher reports it) rather than fail them all."""
    from services.queue.operations import SYSTEMIC_UNREADABLE, UnreadableRound

    now = datetime.now(timezone.utc)
    posts = [planned_post(f"legacy-{i}", platforms=[Platform.YOUTUBE], at=now - timedelta(minutes=1))
             for i in range(SYSTEMIC_UNREADABLE)]
    good = planned_post("fine", platforms=[Platform.TIKTOK], at=now - timedelta(minutes=1))
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            await repo.insert_planned(conn, [*posts, good], [{}] * (len(posts) + 1))
            await conn.execute("UPDATE posts SET content = $1::jsonb WHERE upstream_id LIKE 'legacy-%'",
                               BROKEN_CONTENT)
        ops = QueueOperations(pool, QueueSettings(), trace.get_tracer("test"), lambda name: name)
        with pytest.raises(UnreadableRound, match=f"{SYSTEMIC_UNREADABLE} of {SYSTEMIC_UNREADABLE + 1} due"):
            await ops.get_next_batch(100)
        async with pool.acquire() as conn:
            assert {r["status"] for r in await conn.fetch("SELECT status FROM targets")} == {"pending"}
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await pool.close()
