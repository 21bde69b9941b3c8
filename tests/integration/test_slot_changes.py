"""A target given up or moved frees or moves its slot in the planner's calendar, through the queue."""

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from contracts import Platform, PostPlanned, SlotChange, SlotChanged, Topics, post_id_for, target_id_for
from harness import Pipeline, event_json, produce, read_topic, settings_for, wait_for
from services.planner import store
from services.runtime import apply_migrations

pytestmark = pytest.mark.integration


async def test_a_cancelled_targets_slot_no_longer_holds_off_the_accounts_next_post(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    submitted, planned = topic_prefix + Topics.CONTENT_SUBMITTED, topic_prefix + Topics.POST_PLANNED
    in_an_hour = datetime.now(timezone.utc) + timedelta(hours=1)
    fixed = {"mode": "at", "scheduledTime": in_an_hour.isoformat()}

    def post(upstream_id: str, **extra) -> bytes:
        return event_json(upstream_id, [("tiktok", "brand")], "https://cdn.test/v.mp4", **extra)

    async def scheduled(upstream_id: str, count: int) -> datetime:
        records = await read_topic(kafka_bootstrap, planned, count)
        plans = {p.upstream_id: p for p in map(PostPlanned.from_bytes, (r.value for r in records))}
        return plans[upstream_id].targets[0].scheduled_time

    async with Pipeline(settings, ["planner", "queue"]) as pipeline:
        await produce(kafka_bootstrap, submitted, [post("held", schedule=fixed)], key=b"held")
        assert await scheduled("held", 1) == in_an_hour
        # asap, but two hours from the held slot (the account's spacing)
        await produce(kafka_bootstrap, submitted, [post("spaced")], key=b"spaced")
        assert await scheduled("spaced", 2) >= in_an_hour + timedelta(hours=2)

        held = target_id_for(post_id_for("held"), Platform.TIKTOK, "brand")
        await wait_for(lambda: _value(database_url, "SELECT count(*) FROM targets WHERE target_id = $1", held),
                       15, "the queue has the held post")
        [outcome] = await pipeline.service("queue").ops.cancel(str(held))
        assert outcome.applied
        await wait_for(lambda: _value(database_url, "SELECT released_by = 'queue' FROM planner_slots WHERE target_id = $1",
                                      held), 15, "the planner released the slot, as the queue's")

        await produce(kafka_bootstrap, submitted, [post("freed")], key=b"freed")
        assert await scheduled("freed", 3) < in_an_hour, "the cancelled slot no longer counts"

    changes = [SlotChanged.from_bytes(r.value) for r in await read_topic(
        kafka_bootstrap, topic_prefix + Topics.SLOT_CHANGED, 1)]
    assert [(c.target_id, c.change, c.account_id) for c in changes] == [(held, SlotChange.RELEASED, "brand")]


async def test_slot_changes_apply_once_in_version_order(database_url):
    now = datetime.now(timezone.utc)
    target = target_id_for(post_id_for("moving"), Platform.YOUTUBE, "chan")

    def change(version: int, kind: SlotChange, at: datetime | None = None) -> SlotChanged:
        return SlotChanged(message_id=target, target_id=target, platform=Platform.YOUTUBE, account_id="chan",
                           version=version, change=kind, slot_at=at, changed_at=now)

    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
        await conn.execute(
            """INSERT INTO planner_slots (target_id, post_id, platform, account_id, content_type, timezone,
                                          slot_at, expected_engagement, strategy)
               VALUES ($1, $2, 'youtube', 'chan', 'video', 'UTC', $3, 0.1, 'learned')""",
            target, post_id_for("moving"), now)
        key = (Platform.YOUTUBE, "chan")
        later = now + timedelta(hours=5)

        async def released_by():
            row = await conn.fetchrow("SELECT released_by, released FROM planner_slots WHERE target_id = $1", target)
            assert row["released"] is (row["released_by"] is not None), "the older planners' column in step"
            return row["released_by"]

        # released, then armed again at a new time, delivered out of order and twice
        assert await store.apply_slot_changes(conn, [change(4, SlotChange.MOVED, later), change(3, SlotChange.RELEASED)]) == 1
        assert await store.calendars(conn, [key], now) == {key: [later.timestamp()]}
        assert await released_by() is None, "held again"
        assert await store.apply_slot_changes(conn, [change(3, SlotChange.RELEASED)]) == 0, "an older change is ignored"
        assert await store.apply_slot_changes(conn, [change(6, SlotChange.RELEASED)]) == 1
        assert await store.calendars(conn, [key], now) == {}
        assert await released_by() == "queue", "for good: not the planner's, which would count again"
        assert await store.apply_slot_changes(conn, [change(0, SlotChange.MOVED, now)]) == 0, "no change at version 0"
    finally:
        await conn.close()


async def _value(database_url, query, *args):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()
