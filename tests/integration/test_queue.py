"""The queue against real Postgres and the real broker."""

import asyncio
import contextlib
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from contracts import (
    Platform,
    PublishOutcome,
    PublishRequested,
    PublishResult,
    RemoteHandle,
    Topics,
)
from services.runtime import apply_migrations, migration_files
from harness import Pipeline, planned_post, produce, read_topic, rows_with, settings_for, target_rows, wait_for

pytestmark = pytest.mark.integration


async def test_migrations_apply_once_and_are_safe_to_run_again_concurrently(database_url):
    conns = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(migration_files())]
        assert await apply_migrations(conns[0]) == []
    finally:
        for c in conns:
            await c.close()


async def test_a_migration_may_take_longer_than_the_connections_command_timeout(database_url, monkeypatch):
    from services.runtime import _migrate

    slow = [*migration_files(), ("999_slow", "SELECT pg_sleep(1.5)")]  # an index on a large table
    monkeypatch.setattr(_migrate, "migration_files", lambda: slow)
    conn = await asyncpg.connect(database_url, command_timeout=1)
    try:
        assert (await apply_migrations(conn))[-1] == "999_slow"
    finally:
        await conn.close()


async def test_planned_post_is_stored_once_and_each_target_dispatched_at_its_time(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    soon = datetime.now(timezone.utc) + timedelta(seconds=2)
    message = planned_post("q-1", at=soon)
    async with Pipeline(settings, ["queue"]):
        # the same message three times: at-least-once delivery must make one post
        await produce(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, [message.to_bytes()] * 3,
                      key=str(message.post_id).encode())
        rows = await wait_for(lambda: rows_with(database_url, "publishing", 3), 15, "three dispatched targets")
        assert len(await target_rows(database_url)) == 3
        for row in rows:
            assert row["updated_at"] >= soon - timedelta(milliseconds=50), "dispatched before its time"
        for platform in Platform:
            records = await read_topic(kafka_bootstrap, topic_prefix + Topics.publish_requested(platform), 1)
            request = PublishRequested.from_bytes(records[0].value)
            assert request.platform is platform and request.attempt == 1
            assert records[0].key == f"acct-{platform.value}".encode(), "keyed by account"
            assert dict(records[0].headers).get("traceparent"), "the request carries the post's trace"


async def test_results_move_targets_and_duplicates_change_nothing(kafka_bootstrap, topic_prefix, database_url):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    message = planned_post("q-2", platforms=[Platform.TIKTOK])
    target_id = message.targets[0].target_id
    async with Pipeline(settings, ["queue"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, [message.to_bytes()])
        await wait_for(lambda: rows_with(database_url, "publishing", 1), 15, "dispatch")
        published = PublishResult(
            message_id=uuid.uuid4(), target_id=target_id, attempt=1, outcome=PublishOutcome.PUBLISHED,
            remote_handle=RemoteHandle(kind="tiktok.publish_id", id="p1"), url="https://tiktok.test/1",
            occurred_at=datetime.now(timezone.utc),
        )
        late_failure = PublishResult(
            message_id=uuid.uuid4(), target_id=target_id, attempt=1, outcome=PublishOutcome.FAILED,
            occurred_at=datetime.now(timezone.utc),
        )
        topic = topic_prefix + Topics.PUBLISH_RESULT
        await produce(kafka_bootstrap, topic, [published.to_bytes()] * 2 + [late_failure.to_bytes()],
                      key=str(target_id).encode())
        rows = await wait_for(lambda: rows_with(database_url, "posted", 1), 15, "posted")
        await asyncio.sleep(0.5)
        row = (await target_rows(database_url))[0]
        assert row["status"] == "posted" and row["url"] == "https://tiktok.test/1"
        # a posted target's timer is its first engagement collection
        first_age = timedelta(seconds=settings.queue.engagement_ages_seconds[0])
        assert row["due_at"] == row["published_at"] + first_age and row["engagement_checks"] == 0
        conn = await asyncpg.connect(database_url)
        try:
            attempts = await conn.fetch("SELECT outcome FROM attempts WHERE target_id = $1", target_id)
        finally:
            await conn.close()
        assert [a["outcome"] for a in attempts] == ["posted"]
        assert rows


async def test_malformed_message_is_dead_lettered_and_the_consumer_goes_on(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    good = planned_post("q-3", platforms=[Platform.YOUTUBE])
    async with Pipeline(settings, ["queue"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED,
                      [b"{broken", b'{"postId": "nope"}', good.to_bytes()], key=b"k")
        await wait_for(lambda: rows_with(database_url, "publishing", 1), 15, "the good message applied")
        letters = await read_topic(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 2)
        reasons = sorted(__import__("orjson").loads(r.value)["reason"] for r in letters)
        assert reasons == ["invalid_field", "invalid_json"]


async def test_inbox_and_attempts_forget_only_after_their_retention(database_url):
    from services.queue.housekeeping import prune
    from services.runtime import create_pool

    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            await conn.execute(
                """INSERT INTO inbox (consumer, message_id, seen_at)
                   SELECT 'c', gen_random_uuid(), now() - make_interval(days => d)
                   FROM generate_series(0, 29) AS d""")
            post_id = uuid.uuid4()
            await conn.execute("INSERT INTO posts (post_id, upstream_id, content, trace_context)"
                               " VALUES ($1, 'u', '{}'::jsonb, '{}'::jsonb)", post_id)
            target_id = uuid.uuid4()
            await conn.execute(
                """INSERT INTO targets (target_id, post_id, platform, account_id, caption, scheduled_time, strategy,
                                       status) VALUES ($1, $2, 'tiktok', 'a', '', now(), 'asap', 'posted')""",
                target_id, post_id)
            await conn.execute(
                """INSERT INTO attempts (target_id, attempt, outcome, at)
                   SELECT $1, d, 'failed', now() - make_interval(days => d * 10) FROM generate_series(0, 19) AS d""",
                target_id)
        assert await prune(pool, "inbox", retention_days=14.5) == 15
        assert await prune(pool, "attempts", retention_days=95) == 10
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM inbox") == 15
            assert await conn.fetchval("SELECT max(attempt) FROM attempts") == 9
    finally:
        await pool.close()


async def test_a_platform_gets_no_more_than_max_in_flight_requests_out_at_once(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    settings = replace(settings, queue=replace(settings.queue, max_in_flight=2))
    messages = [planned_post(f"cap-{i}", platforms=[Platform.TIKTOK]) for i in range(3)]
    async with Pipeline(settings, ["queue"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, [m.to_bytes() for m in messages])
        out = await wait_for(lambda: rows_with(database_url, "publishing", 2), 15, "two dispatched")
        await asyncio.sleep(1.0)
        assert sorted(r["status"] for r in await target_rows(database_url)) == ["pending", "publishing", "publishing"]
        # one result comes back: the third goes out
        done = PublishResult(
            message_id=uuid.uuid4(), target_id=out[0]["target_id"], attempt=1, outcome=PublishOutcome.PUBLISHED,
            remote_handle=RemoteHandle(kind="tiktok.publish_id", id="p-cap"), url="https://tiktok.test/cap",
            occurred_at=datetime.now(timezone.utc),
        )
        await produce(kafka_bootstrap, topic_prefix + Topics.PUBLISH_RESULT, [done.to_bytes()],
                      key=str(done.target_id).encode())
        await wait_for(lambda: rows_with(database_url, "posted", 1), 15, "posted")
        await wait_for(lambda: rows_with(database_url, "publishing", 2), 5, "the waiting target dispatched")


async def test_two_queue_replicas_each_count_results_as_their_share_of_all(database_url, tmp_path):
    # requests out are counted across replicas, so each must scale the results it applies
    from services.devstack import start_tansu
    from services.queue.app import QueueService
    from services.queue.domain import InFlightLimit
    from services.runtime import ServiceContext, ServiceHost

    # a broker of its own: the local broker may keep a group that two members left one after the
    # other mid-rebalance from assigning anyone; no other test should meet that broker
    broker = await start_tansu(log_path=tmp_path / "tansu.log")
    settings = settings_for(broker.bootstrap, "", database_url)
    replicas = [QueueService(ServiceContext("queue", settings)) for _ in range(2)]
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(broker.stop)
        await stack.enter_async_context(ServiceHost(replicas[0]))
        await stack.enter_async_context(ServiceHost(replicas[1]))

        async def split():
            shares = sorted(r.ops.results_share() for r in replicas)
            return shares if shares[1] < 1.0 else None

        shares = await wait_for(split, 30, "publish.result's partitions split between the two")
        assert shares == [1 / 3, 2 / 3], "3 partitions: one replica holds one, the other two"
        # what one replica sees, scaled, is the rate of the two together
        seen, alone = replicas[0].ops.in_flight["tiktok"], InFlightLimit(500, 600)
        share = replicas[0].ops.results_share()
        for second in range(6):
            seen.completed(1000.0 + second, 10, share)
            alone.completed(1000.0 + second, 10)
        assert seen.rate == pytest.approx(alone.rate / share)


async def test_one_platforms_older_backlog_does_not_hold_up_the_others_dispatch(database_url):
    from services.queue import repository as repo
    from services.runtime import create_pool

    now = datetime.now(timezone.utc)
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            post_id = uuid.uuid4()
            await conn.execute("INSERT INTO posts (post_id, upstream_id, content) VALUES ($1, 'backlog', '{}')",
                               post_id)
            rows = ([("tiktok", "pending", now - timedelta(minutes=30) + timedelta(seconds=i)) for i in range(30)]
                    + [("youtube", "pending", now - timedelta(minutes=1)), ("youtube", "retry_wait", now)]
                    + [("tiktok", "processing", now - timedelta(minutes=5))])  # a status check is due
            await conn.executemany(
                """INSERT INTO targets (target_id, post_id, platform, account_id, caption, scheduled_time, strategy,
                                        status, due_at) VALUES (gen_random_uuid(), $1, $2, 'a', '', $4, 'asap', $3, $4)""",
                [(post_id, platform, status, due) for platform, status, due in rows])
            async with conn.transaction():
                claimed, full = await repo.claim_due(conn, now, 10, {"tiktok": 3, "youtube": 5, "instagram": 0})
                got = sorted((d.platform, d.state.status.value) for d in claimed)
            assert got == [("tiktok", "pending")] * 3 + [("tiktok", "processing")] + [("youtube", "pending"),
                                                                                       ("youtube", "retry_wait")]
            assert not full, "short of room is not a full batch: results wake the dispatcher"
            async with conn.transaction():
                claimed, full = await repo.claim_due(conn, now, 10, {"tiktok": 0, "youtube": 0, "instagram": 0})
                assert [d.state.status.value for d in claimed] == ["processing"], "checks go out whatever the room"
            async with conn.transaction():
                claimed, full = await repo.claim_due(conn, now, 10)  # no in-flight limit: oldest first
                assert len(claimed) == 10 and full and {d.platform for d in claimed} == {"tiktok"}
    finally:
        await pool.close()


async def test_an_outbox_message_the_broker_refuses_is_dead_lettered_and_the_rest_sent(
    kafka_bootstrap, topic_prefix, database_url
):
    from opentelemetry.sdk.trace import TracerProvider

    from contracts import DeadLetter
    from services.queue import repository as repo
    from services.queue.outbox import OutboxRelay
    from services.runtime import Outgoing, build_broker, create_pool, ensure_topics, publish_all

    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    topic, dead_letters = topic_prefix + "outbox.test", topic_prefix + Topics.DEAD_LETTER
    await ensure_topics(settings.kafka, [topic, dead_letters])
    huge = b"x" * 1_200_000  # over the producer's 1 MiB message limit
    broker = build_broker(settings.kafka, TracerProvider(), "relay-test")
    await broker.start()
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            await repo.write_outbox(conn, [Outgoing(topic, "a", b"one"), Outgoing(topic, "b", huge),
                                           Outgoing(topic, "c", b"two")])
        relay = OutboxRelay(pool, lambda messages: publish_all(broker, messages), dead_letter_topic=dead_letters)
        assert await relay.relay_once() == 3
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await pool.close()
        await broker.stop()
    # "one", sent before the refusal, is sent again with the rest: at least once, as ever
    assert {r.value for r in await read_topic(kafka_bootstrap, topic, 3)} == {b"one", b"two"}
    [letter] = [DeadLetter.from_bytes(r.value) for r in await read_topic(kafka_bootstrap, dead_letters, 1)]
    assert (letter.consumer, letter.reason, letter.source_topic) == ("queue-outbox", "refused_by_broker", topic)
    assert letter.truncated and letter.payload_bytes == len(huge) and "MessageSizeTooLarge" in letter.message


async def test_a_request_the_broker_never_took_spends_no_attempt_however_long_it_waits(database_url):
    # the broker (or the relay) down for more than six leases: the request waits in the outbox,
    # and its lease is renewed rather than run out six times into a failure
    from opentelemetry import trace

    from services.queue.operations import QueueOperations
    from services.runtime import QueueSettings, create_pool

    clock = {"now": datetime.now(timezone.utc)}
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        settings = QueueSettings()
        ops = QueueOperations(pool, settings, trace.get_tracer("test"), lambda name: name,
                              clock=lambda: clock["now"])
        await ops.add_to_queue([(planned_post("outage", [Platform.INSTAGRAM], at=clock["now"]), {})])
        await ops.get_next_batch(100)  # dispatched: its request is in the outbox, unsent
        for _ in range(8):
            clock["now"] += timedelta(seconds=settings.lease_seconds + 1)
            await ops.get_next_batch(100)
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT status, attempt, failures FROM targets")
            requests = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic LIKE 'publish.requested%'")
            await conn.execute("DELETE FROM outbox")  # the broker is back: the relay sent it
        assert (row["status"], row["attempt"], row["failures"]) == ("publishing", 1, 0)
        assert requests == 1, "one request, sent once the broker is back"
        clock["now"] += timedelta(seconds=settings.lease_seconds + 1)
        await ops.get_next_batch(100)  # now the lease may run out: sent, and no answer came
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT status, attempt, failures FROM targets")
        assert (row["status"], row["attempt"], row["failures"]) == ("publishing", 2, 1)
    finally:
        await pool.close()
