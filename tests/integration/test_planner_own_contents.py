"""The planner keeps what each post was planned to post (`planner_post_contents`, migration
018), in the transaction that books its slots: an event reusing an upstream id with other
content is refused from that record, without the queue's tables, even once the planner gave
the post up (the queue never stored it). Migration 018 fills it for the posts planned before;
housekeeping prunes it after the post's slots."""

from dataclasses import replace

import asyncpg
import pytest

from contracts import ContentRejected, DeadLetter, PostPlanned, Topics, post_id_for
from harness import Pipeline, event_json, planned_post, produce, read_topic, settings_for, wait_for
from services.planner import store
from services.planner.domain import PostedContent
from services.queue.housekeeping import RETENTION_DAYS, prune
from services.queue.repository import insert_planned
from services.runtime import apply_migrations

pytestmark = pytest.mark.integration


async def test_an_edit_of_a_post_the_planner_gave_up_is_refused_from_its_own_record(
        kafka_bootstrap, topic_prefix, database_url):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    # no queue: nothing stores the post; given up at its first resend (well under a second)
    settings = replace(settings, planner=replace(settings.planner, recovery_interval_seconds=0.2,
                                                 resend_after_seconds=0.2, resend_max=0))
    submitted = topic_prefix + Topics.CONTENT_SUBMITTED
    first = event_json("abandoned", [("tiktok", "brand")], "https://cdn.test/v.mp4")
    edited = event_json("abandoned", [("tiktok", "brand")], "https://cdn.test/v.mp4", caption="rewritten")
    post_id = post_id_for("abandoned")
    conn = await asyncpg.connect(database_url)
    try:
        async with Pipeline(settings, ["planner"]):
            await produce(kafka_bootstrap, submitted, [first])
            [plan] = await read_topic(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, 1)
            planned = PostPlanned.from_bytes(plan.value)
            # booked with the slot, by the planner alone
            assert await conn.fetchval("SELECT count(*) FROM planner_post_contents WHERE post_id = $1", post_id) == 1

            [letter] = await read_topic(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 1)
            assert DeadLetter.from_bytes(letter.value).reason == "post_not_queued"
            await wait_for(lambda: conn.fetchval(
                "SELECT released_by = 'planner' FROM planner_slots WHERE post_id = $1", post_id), 10, "given up")
            assert await conn.fetchval("SELECT count(*) FROM planner_unconfirmed") == 0
            assert await conn.fetchval("SELECT count(*) FROM posts") == 0

            await produce(kafka_bootstrap, submitted, [edited])
            [refusal] = await read_topic(kafka_bootstrap, topic_prefix + Topics.CONTENT_REJECTED, 1)

        answer = ContentRejected.from_bytes(refusal.value)
        assert (answer.reason, answer.upstream_id) == ("upstream_id_reused", "abandoned")
        assert [(d.type, d.field, d.target) for d in answer.details] == [
            ("content_changed", "caption", None), ("content_changed", "targets", "tiktok:brand")]

        # what the check reads is the planner's alone: the same with the queue's tables gone
        check = conn.transaction()
        await check.start()
        try:
            await conn.execute("DROP TABLE targets, posts CASCADE")
            assert await store.planned_contents(conn, [post_id]) == {post_id: PostedContent.of(planned)}
        finally:
            await check.rollback()
    finally:
        await conn.close()


def _edited(post: PostPlanned, **texts: str) -> PostPlanned:
    """`post` with its own caption for some targets (by account id)."""
    return post.model_copy(update={"targets": [
        t.model_copy(update={"caption": texts.get(t.account_id, t.caption)}) for t in post.targets]})


async def _book(conn, post: PostPlanned) -> None:
    """The slots the planning transaction booked for `post`."""
    await store.insert_slots(conn, [store.PlannedSlot(
        t.target_id, post.post_id, t.platform, t.account_id, post.content.content_type, "UTC",
        t.scheduled_time, t.expected_engagement, t.strategy) for t in post.targets])


async def _letter(conn, post: PostPlanned, *, consumer="planner.recovery", truncated=False, payload=None):
    await conn.execute(
        """INSERT INTO dead_letters (consumer, reason, message, source_topic, payload, failed_at, truncated)
           VALUES ($1, 'post_not_queued', 'given up', $2, $3, now(), $4)""",
        consumer, Topics.POST_PLANNED, payload if payload is not None else post.to_bytes(), truncated)


async def test_the_migration_records_the_posts_planned_before_it(database_url):
    in_flight = _edited(planned_post("in flight"), **{"acct-tiktok": "its own"})
    stored = _edited(planned_post("stored"), **{"acct-youtube": "a title"})
    given_up = planned_post("given up")
    truncated = planned_post("given up, letter truncated")
    forgotten = planned_post("given up, no letter")
    not_planners = planned_post("stored, never the planner's")
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
        # the schema as it was before 018
        await conn.execute("DROP TABLE planner_post_contents")
        await conn.execute("DELETE FROM schema_migrations WHERE version LIKE '018%'")
        for post in (in_flight, stored, given_up, truncated, forgotten):
            await _book(conn, post)
        await store.remember_sent(conn, [(in_flight.post_id, Topics.POST_PLANNED, in_flight.to_bytes(), "{}")],  # a bare connection: jsonb as text
                                  resend_at=in_flight.planned_at)
        await insert_planned(conn, [stored, not_planners], [{}, {}])
        await _letter(conn, given_up)
        await _letter(conn, truncated, truncated=True, payload=truncated.to_bytes()[:40])
        await _letter(conn, forgotten, consumer="queue", payload=b"\xff not the planner's")

        assert await apply_migrations(conn) == ["018_planner_post_contents"]
        everyone = [p.post_id for p in (in_flight, stored, given_up, truncated, forgotten, not_planners)]
        assert await store.planned_contents(conn, everyone) == {
            p.post_id: PostedContent.of(p) for p in (in_flight, stored, given_up)}
        assert await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname = 'text_of'") == 0
    finally:
        await conn.close()


async def test_a_posts_record_goes_with_the_last_of_its_slots(pool):
    days = RETENTION_DAYS["planner_slots"] + 1
    posts = {name: planned_post(name) for name in ("given up long ago", "stored long ago", "given up lately")}
    async with pool.acquire() as conn:
        for name, post in posts.items():
            await _book(conn, post)
            await store.record_contents(conn, {post.post_id: PostedContent.of(post)})
        await insert_planned(conn, [posts["stored long ago"]], [{}])
        for table in ("planner_slots", "planner_post_contents"):
            await conn.execute(f"UPDATE {table} SET planned_at = now() - make_interval(days => $1) "
                               "WHERE post_id <> $2", days, posts["given up lately"].post_id)
    assert await prune(pool, "planner_post_contents", RETENTION_DAYS["planner_post_contents"]) == 0, \
        "not while a slot of its post is kept"
    assert await prune(pool, "planner_slots", RETENTION_DAYS["planner_slots"]) == 3  # its three targets
    assert await prune(pool, "planner_post_contents", RETENTION_DAYS["planner_post_contents"]) == 1
    async with pool.acquire() as conn:
        left = await store.planned_contents(conn, [p.post_id for p in posts.values()])
        assert set(left) == {posts["stored long ago"].post_id, posts["given up lately"].post_id}
        # planned anew from the same upstream id once its slots are gone: recorded anew
        again = _edited(posts["given up long ago"], **{"acct-tiktok": "new"})
        await store.record_contents(conn, {again.post_id: PostedContent.of(again)})
        await store.record_contents(conn, {again.post_id: PostedContent.of(again)})
        assert (await store.planned_contents(conn, [again.post_id]))[again.post_id] == PostedContent.of(again)
