"""A post the planner gave up to the dead letters (the queue never stored it) no longer books its
accounts' calendar; a post still being sent, or stored after all (its dead letter replayed),
does. Housekeeping later prunes the slots of posts neither being sent nor stored."""

import base64
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from contracts import (
    ContentType,
    DeadLetter,
    Platform,
    PostPlanned,
    SlotChange,
    SlotChanged,
    Topics,
    post_id_for,
    target_id_for,
)
from harness import Pipeline, event_json, planned_post, produce, read_topic, settings_for, wait_for
from services.planner import store
from services.planner.recovery import PlannedRecovery
from services.queue.housekeeping import RETENTION_DAYS, prune
from services.runtime import PlannerSettings

pytestmark = pytest.mark.integration

KEY = (Platform.TIKTOK, "brand")
NOW = datetime.now(timezone.utc).replace(microsecond=0)


async def _plan(conn, upstream_id: str, at: datetime, *, resends: int = 0, resend_in: float = -1.0) -> uuid.UUID:
    """What the planning transaction keeps of a post planned for KEY at `at`: its slot, and the
    post.planned sent, to be sent again `resend_in` seconds from now."""
    post_id = post_id_for(upstream_id)
    planned = planned_post(upstream_id, platforms=(Platform.TIKTOK,), at=at)
    await store.insert_slots(conn, [store.PlannedSlot(
        target_id_for(post_id, *KEY), post_id, *KEY, ContentType.VIDEO, "UTC", at, 0.1, "asap")])
    await store.remember_sent(conn, [(post_id, Topics.POST_PLANNED, planned.to_bytes(), {})],
                              resend_at=NOW + timedelta(seconds=resend_in))
    await conn.execute("UPDATE planner_unconfirmed SET resends = $2 WHERE post_id = $1", post_id, resends)
    return post_id


async def _recover(pool, resend_max: int = 2) -> list:
    sent = []

    async def send(outgoing):
        sent.extend(outgoing)

    await PlannedRecovery(pool, send, PlannerSettings(resend_max=resend_max), clock=lambda: NOW).recover_once()
    return sent


async def _calendar(pool) -> list[datetime]:
    async with pool.acquire() as conn:
        found = await store.calendars(conn, [KEY], NOW - timedelta(days=2))
    return [datetime.fromtimestamp(t, timezone.utc) for t in found.get(KEY, [])]


async def _store_post(conn, post_id: uuid.UUID) -> None:
    """The queue's record of the post (all the planner reads of it: its id)."""
    await conn.execute("INSERT INTO posts (post_id, upstream_id, content) VALUES ($1, $2, '{}')", post_id,
                       str(post_id))


async def _released_by(conn, post_id: uuid.UUID) -> str | None:
    return await conn.fetchval("SELECT released_by FROM planner_slots WHERE post_id = $1", post_id)


async def test_a_given_up_posts_slots_no_longer_count_and_an_in_flight_ones_do(pool):
    given_up_at, in_flight_at, overdue_at = (NOW + timedelta(hours=h) for h in (3, 6, 9))
    async with pool.acquire() as conn:
        given_up = await _plan(conn, "given-up", given_up_at, resends=2)  # sent thrice: the last due now
        await _plan(conn, "in-flight", in_flight_at, resend_in=60)  # planned a moment ago
        await _plan(conn, "overdue", overdue_at, resends=1)  # due to be sent again, not given up
    assert await _calendar(pool) == [given_up_at, in_flight_at, overdue_at]

    sent = await _recover(pool)
    letters = [DeadLetter.from_bytes(o.value) for o in sent if o.topic == Topics.DEAD_LETTER]
    assert [(d.reason, PostPlanned.from_bytes(base64.b64decode(d.payload_base64)).post_id) for d in letters] == [
        ("post_not_queued", given_up)]
    assert [o.key for o in sent if o.topic == Topics.POST_PLANNED] == [str(post_id_for("overdue"))]
    assert await _calendar(pool) == [in_flight_at, overdue_at], "the given-up post holds nothing"
    async with pool.acquire() as conn:
        by = await conn.fetchval("SELECT released_by FROM planner_slots WHERE post_id = $1", given_up)
        assert by == "planner", "released by the planner, kept for a replay"
        assert await conn.fetchval("SELECT count(*) FROM planner_unconfirmed") == 2

    assert len(await _recover(pool)) == 0 and await _calendar(pool) == [in_flight_at, overdue_at], "once"


async def test_a_given_up_post_back_in_flight_or_stored_counts_again_until_the_queue_changes_it(pool):
    at = NOW + timedelta(hours=3)
    async with pool.acquire() as conn:
        post_id = await _plan(conn, "replayed", at, resends=2)
    await _recover(pool)
    assert await _calendar(pool) == []

    async with pool.acquire() as conn:
        # planned again from the same event: the same post.planned, sent again
        planned = planned_post("replayed", platforms=(Platform.TIKTOK,), at=at)
        await store.remember_sent(conn, [(post_id, Topics.POST_PLANNED, planned.to_bytes(), {})],
                                  resend_at=NOW + timedelta(minutes=2))
    assert await _calendar(pool) == [at], "sent again, it is in flight again"
    async with pool.acquire() as conn:
        await store.forget(conn, [post_id])
        assert await _calendar(pool) == []
        # an operator replayed its dead letter and the queue stored it
        await _store_post(conn, post_id)
        assert await _calendar(pool) == [at], "the queue has it: it will go out"
        # from then on the queue tells what becomes of its slot
        target_id = target_id_for(post_id, *KEY)
        moved = NOW + timedelta(hours=5)
        change = dict(message_id=uuid.uuid4(), target_id=target_id, platform=KEY[0], account_id=KEY[1],
                      changed_at=NOW)
        await store.apply_slot_changes(conn, [SlotChanged(version=4, change=SlotChange.MOVED, slot_at=moved, **change)])
        assert await _calendar(pool) == [moved]
        assert await _released_by(conn, post_id) is None, "held again, at the queue's time"
        await store.apply_slot_changes(conn, [SlotChanged(version=5, change=SlotChange.RELEASED, **change)])
        assert await _calendar(pool) == [], "cancelled in the queue: released for good"
        assert await _released_by(conn, post_id) == "queue"
        # given up again (say a copy of its post.planned in flight): the queue's release stays
        assert await store.release_given_up(conn, [post_id]) == 0
        assert await _released_by(conn, post_id) == "queue"


async def test_a_post_given_up_twice_stays_the_planners_to_count_again(pool):
    at = NOW + timedelta(hours=3)
    async with pool.acquire() as conn:
        post_id = await _plan(conn, "twice", at, resends=2)
    await _recover(pool)
    async with pool.acquire() as conn:
        planned = planned_post("twice", platforms=(Platform.TIKTOK,), at=at)
        await store.remember_sent(conn, [(post_id, Topics.POST_PLANNED, planned.to_bytes(), {})], resend_at=NOW)
        await conn.execute("UPDATE planner_unconfirmed SET resends = 2 WHERE post_id = $1", post_id)
    assert await _calendar(pool) == [at]
    await _recover(pool)  # given up again: its slot was released already
    async with pool.acquire() as conn:
        assert await _released_by(conn, post_id) == "planner"
        await _store_post(conn, post_id)
    assert await _calendar(pool) == [at], "stored after all: it counts again"


async def test_a_post_the_queue_stored_meanwhile_keeps_its_slots(pool):
    at = NOW + timedelta(hours=3)
    async with pool.acquire() as conn:
        post_id = await _plan(conn, "late", at, resends=2)
        await _store_post(conn, post_id)  # after the round forgot what the queue had
        assert await store.release_given_up(conn, [post_id]) == 0
        assert await _released_by(conn, post_id) is None
    assert await _calendar(pool) == [at]


async def test_housekeeping_prunes_old_slots_of_posts_neither_being_sent_nor_stored(pool):
    async with pool.acquire() as conn:
        slots = {}
        for name, days, state in [
            ("given up long ago", 38, "given up"), ("given up, letter still replayable", 30, "given up"),
            ("lost before its slots were released", 60, "orphan"),
            ("still being sent", 60, "in flight"), ("stored long ago", 60, "stored"),
        ]:
            post_id = await _plan(conn, name, NOW + timedelta(hours=1), resend_in=600)
            if state in ("given up", "orphan"):
                await store.forget(conn, [post_id])
            if state == "given up":
                await store.release_given_up(conn, [post_id])
            if state == "stored":
                await store.forget(conn, [post_id])
                await _store_post(conn, post_id)
            await conn.execute("UPDATE planner_slots SET planned_at = now() - make_interval(days => $2) "
                               "WHERE post_id = $1", post_id, days)
            slots[name] = post_id
    assert await prune(pool, "planner_slots", RETENTION_DAYS["planner_slots"]) == 2
    async with pool.acquire() as conn:
        left = {r["post_id"] for r in await conn.fetch("SELECT post_id FROM planner_slots")}
    assert {name for name, post_id in slots.items() if post_id in left} == {
        "given up, letter still replayable", "still being sent", "stored long ago"}


async def test_a_given_up_post_no_longer_holds_off_the_accounts_next_posts(kafka_bootstrap, topic_prefix, database_url):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    # no queue: nothing stores the posts, given up after two sends (about 6 s)
    settings = replace(settings, planner=replace(settings.planner, recovery_interval_seconds=0.2,
                                                 resend_after_seconds=2.0, resend_max=1))
    submitted, planned = topic_prefix + Topics.CONTENT_SUBMITTED, topic_prefix + Topics.POST_PLANNED
    in_an_hour = datetime.now(timezone.utc) + timedelta(hours=1)

    def post(upstream_id: str, **extra) -> bytes:
        return event_json(upstream_id, [("tiktok", "brand")], "https://cdn.test/v.mp4", **extra)

    async def scheduled(upstream_id: str) -> datetime:
        async def plan():
            records = await read_topic(kafka_bootstrap, planned, 100, timeout=1.0)
            return {p.upstream_id: p for p in map(PostPlanned.from_bytes, (r.value for r in records))}.get(upstream_id)

        return (await wait_for(plan, 20, f"{upstream_id} planned")).targets[0].scheduled_time

    async with Pipeline(settings, ["planner"]):
        await produce(kafka_bootstrap, submitted, [post("held", schedule={"mode": "at",
                                                                          "scheduledTime": in_an_hour.isoformat()})])
        assert await scheduled("held") == in_an_hour
        # while its post.planned is in flight (sent, not stored yet), its slot holds
        await produce(kafka_bootstrap, submitted, [post("spaced")])
        assert await scheduled("spaced") >= in_an_hour + timedelta(hours=2), "spaced from the held slot"

        letters = [DeadLetter.from_bytes(r.value) for r in await read_topic(
            kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 2, timeout=30)]
        assert {PostPlanned.from_bytes(base64.b64decode(d.payload_base64)).upstream_id for d in letters} == {"held", "spaced"}

        await produce(kafka_bootstrap, submitted, [post("freed")])
        assert await scheduled("freed") < in_an_hour, "the given-up posts' slots no longer count"
