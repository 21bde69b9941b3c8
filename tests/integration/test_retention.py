"""The queue's housekeeping forgets, for the whole database, what nothing reads again: dead
letters (unreplayed ones later than replayed ones), alerts whose deliveries are done, remote
handles of targets finished long ago, quota reservations long out of their window. What is
still needed stays."""

import asyncio
import uuid

import pytest

from services.queue import housekeeping
from services.queue.housekeeping import Housekeeping, RETENTION_DAYS, prune

pytestmark = pytest.mark.integration


async def _letter(conn, name: str, *, stored_days: int, replayed_days: float | None = None,
                  truncated: bool = False) -> int:
    return await conn.fetchval(
        """INSERT INTO dead_letters (consumer, reason, message, source_topic, source_partition, source_offset,
                                     payload, failed_at, stored_at, replays, replayed_at, truncated)
           VALUES ('c', 'invalid_json', $1, 't', 0, nextval('dead_letters_id_seq'), 'x',
                   now() - make_interval(days => $2), now() - make_interval(days => $2),
                   CASE WHEN $3::float8 IS NULL THEN 0 ELSE 1 END,
                   now() - make_interval(secs => $3::float8 * 86400), $4)
           RETURNING id""",
        name, stored_days, replayed_days, truncated)


async def test_dead_letters_not_replayed_are_kept_longer_than_replayed_ones(pool):
    async with pool.acquire() as conn:
        for name, stored, replayed, truncated in [
            ("old", 31, None, False), ("old truncated", 31, None, True), ("recent", 29, None, False),
            ("replayed long ago", 40, 15, False), ("replayed lately", 40, 13, False),
            ("replayed today, stored a season ago", 100, 0.1, False),
        ]:
            await _letter(conn, name, stored_days=stored, replayed_days=replayed, truncated=truncated)
    assert await prune(pool, "dead_letters_unreplayed", RETENTION_DAYS["dead_letters_unreplayed"]) == 2
    assert await prune(pool, "dead_letters_replayed", RETENTION_DAYS["dead_letters_replayed"]) == 1
    async with pool.acquire() as conn:
        left = {r["message"] for r in await conn.fetch("SELECT message FROM dead_letters")}
    assert left == {"recent", "replayed lately", "replayed today, stored a season ago"}


async def test_alerts_go_with_their_deliveries_once_all_are_done(pool):
    ids = {name: uuid.uuid4() for name in ("delivered", "given up", "still retried", "recent", "no webhook")}
    async with pool.acquire() as conn:
        for name, days in [("delivered", 31), ("given up", 31), ("still retried", 31), ("recent", 29),
                           ("no webhook", 31)]:
            await conn.execute(
                """INSERT INTO alerts (alert_id, kind, payload, received_at)
                   VALUES ($1, 'target_failed', '{}'::jsonb, now() - make_interval(days => $2))""",
                ids[name], days)
        deliveries = [
            ("delivered", "ops", 1, None, "now()"), ("delivered", "chat", 2, None, "now()"),
            ("given up", "ops", 8, None, "NULL"),
            ("still retried", "ops", 1, None, "NULL"), ("still retried", "chat", 3, "now()", "NULL"),
            ("recent", "ops", 1, None, "now()"),
        ]
        for name, hook, attempts, next_at, delivered in deliveries:
            await conn.execute(
                f"""INSERT INTO alert_deliveries (alert_id, webhook, attempts, next_attempt_at, delivered_at)
                    VALUES ($1, $2, $3, {next_at or 'NULL'}, {delivered})""", ids[name], hook, attempts)
    assert await prune(pool, "alerts", RETENTION_DAYS["alerts"]) == 3
    async with pool.acquire() as conn:
        assert set(await conn.fetchval("SELECT array_agg(alert_id) FROM alerts")) == {
            ids["still retried"], ids["recent"]}
        assert sorted(tuple(r) for r in await conn.fetch("SELECT alert_id, webhook FROM alert_deliveries")) == sorted(
            [(ids["still retried"], "ops"), (ids["still retried"], "chat"), (ids["recent"], "ops")])


async def _target(conn, post_id, status: str, *, changed_days: int, due: bool = False) -> uuid.UUID:
    return await conn.fetchval(
        f"""INSERT INTO targets (target_id, post_id, platform, account_id, caption, scheduled_time, strategy,
                                status, due_at, updated_at)
            VALUES (gen_random_uuid(), $1, 'tiktok', 'a', '', now(), 'asap', $2, {'now()' if due else 'NULL'},
                    now() - make_interval(days => $3))
            RETURNING target_id""", post_id, status, changed_days)


async def _handle(conn, target_id, generation: int, written_days: int) -> None:
    await conn.execute(
        """INSERT INTO remote_handles (target_id, generation, platform, account_id, attempt, stage, kind,
                                       remote_id, created_at, updated_at)
           VALUES ($1, $2, 'tiktok', 'a', 1, 'accepted', 'tiktok.publish_id', $4,
                   now() - make_interval(days => $3), now() - make_interval(days => $3))""",
        target_id, generation, written_days, f"p-{generation}")


async def test_remote_handles_go_only_with_targets_finished_long_ago(pool):
    async with pool.acquire() as conn:
        post_id = uuid.uuid4()
        await conn.execute("INSERT INTO posts (post_id, upstream_id, content) VALUES ($1, 'u', '{}')", post_id)
        targets = {
            "posted long ago": await _target(conn, post_id, "posted", changed_days=31),
            "cancelled long ago": await _target(conn, post_id, "cancelled", changed_days=40),
            "posted lately": await _target(conn, post_id, "posted", changed_days=10),
            # an engagement collection still to come: its last change is not its last
            "posted, still collected": await _target(conn, post_id, "posted", changed_days=31, due=True),
            # an operator may retry a failed target: its handle says what the platform has
            "failed long ago": await _target(conn, post_id, "failed", changed_days=60),
            "waiting long": await _target(conn, post_id, "retry_wait", changed_days=60, due=True),
        }
        for target_id in targets.values():
            await _handle(conn, target_id, 1, 61)
            await _handle(conn, target_id, 2, 31)
        await _handle(conn, targets["posted lately"], 3, 10)
        await _handle(conn, uuid.uuid4(), 1, 90)  # a handle without a target: left alone
    assert await prune(pool, "remote_handles", RETENTION_DAYS["remote_handles"]) == 4
    async with pool.acquire() as conn:
        left = {(r["target_id"], r["generation"]) for r in await conn.fetch("SELECT * FROM remote_handles")}
    kept = {name for name, target_id in targets.items() if (target_id, 1) in left}
    assert kept == {"posted lately", "posted, still collected", "failed long ago", "waiting long"}
    assert (targets["posted lately"], 3) in left and len(left) == 4 * 2 + 1 + 1


async def test_quota_reservations_go_once_well_out_of_their_window(pool):
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO quota_reservations (bucket, scope, reservation_key, units, reserved_at)
               VALUES ($1, $2, $3, 1, now() - make_interval(hours => $4))""",
            [("tiktok.direct_posts", "creator", "in the window", 23), ("tiktok.direct_posts", "creator", "margin", 60),
             ("tiktok.direct_posts", "creator", "long gone", 73),
             ("instagram.publishes", "removed account", "long gone", 24 * 30)])
    assert await prune(pool, "quota_reservations", RETENTION_DAYS["quota_reservations"]) == 2
    async with pool.acquire() as conn:
        assert sorted(await conn.fetchval("SELECT array_agg(reservation_key) FROM quota_reservations")) == [
            "in the window", "margin"]


async def test_pruning_goes_a_batch_at_a_time_until_none_is_left(pool, monkeypatch):
    monkeypatch.setattr(housekeeping, "BATCH", 3)
    async with pool.acquire() as conn:
        for i in range(10):
            await _letter(conn, f"old {i}", stored_days=45)
        await _letter(conn, "recent", stored_days=1)
    assert await prune(pool, "dead_letters_unreplayed", 30) == 10
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT array_agg(message) FROM dead_letters") == ["recent"]


async def test_housekeeping_prunes_every_table_it_keeps(pool):
    async with pool.acquire() as conn:
        await _letter(conn, "old", stored_days=31)
        await _letter(conn, "recent", stored_days=1)
        await conn.execute("""INSERT INTO alerts (alert_id, kind, payload, received_at)
                              VALUES (gen_random_uuid(), 'target_failed', '{}', now() - interval '31 days')""")
        await conn.execute("""INSERT INTO quota_reservations (bucket, scope, reservation_key, units, reserved_at)
                              VALUES ('b', 's', 'k', 1, now() - interval '4 days')""")
    task = Housekeeping(pool, interval=3600)
    await task.start()
    try:
        async def pruned():
            async with pool.acquire() as conn:
                return await conn.fetchval(
                    """SELECT (SELECT count(*) FROM dead_letters) = 1 AND (SELECT count(*) FROM alerts) = 0
                              AND (SELECT count(*) FROM quota_reservations) = 0""")

        for _ in range(100):
            if await pruned():
                break
            await asyncio.sleep(0.1)
        assert await pruned()
    finally:
        await task.stop()


async def test_the_migration_builds_an_index_for_each_retention(pool):
    async with pool.acquire() as conn:
        names = {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes")}
    assert {"dead_letters_unreplayed_stored_at", "dead_letters_replayed_at", "alerts_received_at",
            "remote_handles_updated_at", "quota_reservations_reserved_at", "inbox_seen_at", "attempts_at"} <= names


# (the remote handles' join is planned from the two tables' sizes: not checked on empty ones)
@pytest.mark.parametrize("table, index", [
    ("dead_letters_unreplayed", "dead_letters_unreplayed_stored_at"),
    ("dead_letters_replayed", "dead_letters_replayed_at"),
    ("alerts", "alerts_received_at"),
    ("quota_reservations", "quota_reservations_reserved_at"),
])
async def test_each_retention_finds_its_rows_by_an_index(pool, table, index):
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + housekeeping._PRUNE[table], 86400.0, 100)
    names, seq = set(), set()

    def walk(node):
        names.add(node.get("Index Name"))
        if node.get("Node Type") == "Seq Scan":
            seq.add(node["Relation Name"])
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    assert index in names and not seq
