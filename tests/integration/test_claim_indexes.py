"""The dispatcher's claims, its wake-up time and an operator's lookup read indexes made for them
(migration 012), not the whole due backlog: a platform's backlog held back at its in-flight limit
is never read by the others' claims, nor by the wake-up time."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from contracts import Platform
from services.queue import repository as repo

pytestmark = pytest.mark.integration

FAR = datetime(2100, 1, 1, tzinfo=timezone.utc)


async def _fill(conn, now: datetime) -> dict[str, uuid.UUID]:
    """A post per platform kind: a TikTok backlog due (older than all), a few of every kind."""
    ids = {}
    rows = []
    for i in range(3):
        post_id = uuid.uuid4()
        ids[f"post{i}"] = post_id
        await conn.execute("INSERT INTO posts (post_id, upstream_id, content) VALUES ($1, $2, '{}')",
                           post_id, f"up-{i}")
    # upstream id shaped like a uuid: still found as an upstream id
    ids["uuid_upstream"], ids["post3"] = uuid.uuid4(), uuid.uuid4()
    await conn.execute("INSERT INTO posts (post_id, upstream_id, content) VALUES ($1, $2, '{}')",
                       ids["post3"], str(ids["uuid_upstream"]))
    for i in range(200):  # the held-back backlog
        rows.append((ids["post0"], "tiktok", "pending", now - timedelta(hours=5) + timedelta(seconds=i)))
    rows += [
        (ids["post1"], "instagram", "pending", now - timedelta(minutes=3)),
        (ids["post1"], "youtube", "retry_wait", now - timedelta(minutes=2)),
        (ids["post1"], "tiktok", "processing", now - timedelta(minutes=1)),  # a status check
        (ids["post2"], "youtube", "posted", now + timedelta(hours=1)),  # an engagement collection
        (ids["post2"], "instagram", "deferred", now + timedelta(minutes=30)),  # a quota wait
        (ids["post2"], "tiktok", "failed", None),
        (ids["post3"], "tiktok", "cancelled", None),
    ]
    await conn.executemany(
        """INSERT INTO targets (target_id, post_id, platform, account_id, caption, scheduled_time, strategy,
                                status, due_at) VALUES (gen_random_uuid(), $1, $2, 'a', '', now(), 'asap', $3, $4)""",
        rows)
    await conn.execute("ANALYZE targets")
    await conn.execute("ANALYZE posts")
    ids["target"] = await conn.fetchval("SELECT target_id FROM targets WHERE platform = 'instagram' AND status = 'pending'")
    return ids


def _indexes(plan) -> tuple[set[str], set[str]]:
    """(index names, relations read by sequential scan) anywhere in a JSON plan."""
    names, seq = set(), set()

    def walk(node):
        if "Index Name" in node:
            names.add(node["Index Name"])
        if node.get("Node Type") == "Seq Scan":
            seq.add(node["Relation Name"])
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    return names, seq


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::text[]"
    return "'" + str(value).replace("'", "''") + "'"


async def _plans(conn, sql: str, args: tuple = ()) -> list[tuple[set[str], set[str]]]:
    """The indexes of the custom plan (the parameters' values known) and of the generic plan (a
    prepared statement's after a few runs: the values unknown), sequential scans disabled (on
    so small a table the planner would rightly read it whole)."""
    plans = []
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plans.append(_indexes(await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)))
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE claim_plan AS {sql}")
        try:
            execute = "EXECUTE claim_plan" + (f"({', '.join(_literal(a) for a in args)})" if args else "")
            plans.append(_indexes(await conn.fetchval("EXPLAIN (FORMAT JSON) " + execute)))
        finally:
            await conn.execute("DEALLOCATE claim_plan")
    return plans


async def test_the_migration_builds_the_claims_partial_indexes(pool):
    async with pool.acquire() as conn:
        defs = {r["indexname"]: r["indexdef"] for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'targets'")}
    assert "WHERE ((due_at IS NOT NULL) AND (status <> ALL" in defs["targets_due_following"]
    for platform in Platform:
        definition = defs[f"targets_due_to_publish_{platform.value}"]
        assert "(due_at)" in definition and f"(platform = '{platform.value}'::text)" in definition
        assert "(status = ANY" in definition
    assert "targets_due_at" in defs, "kept: the claim without an in-flight limit reads it"


class Recorder:
    """Stands for a connection: notes each statement and its arguments, returns nothing."""

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []

    async def fetch(self, sql, *args):
        self.calls.append((sql, args))
        return []

    async def fetchval(self, sql, *args):
        self.calls.append((sql, args))


async def test_each_claim_reads_only_its_partial_index(pool):
    now = datetime.now(timezone.utc)
    recorder = Recorder()
    room = {p.value: 5 for p in Platform}
    await repo.claim_due(recorder, now, 10, room)
    following, *to_publish = recorder.calls
    assert len(to_publish) == len(room)
    async with pool.acquire() as conn:
        await _fill(conn, now)
        for names, seq in await _plans(conn, *following):
            assert names == {"targets_due_following", "posts_pkey"} and not seq
        for platform, call in zip(room, to_publish):
            for names, seq in await _plans(conn, *call):
                assert names == {f"targets_due_to_publish_{platform}", "posts_pkey"} and not seq


async def test_the_wake_up_time_reads_the_first_entry_of_each_index(pool):
    now = datetime.now(timezone.utc)
    recorder = Recorder()
    await repo.next_due_at(recorder, ["tiktok"])
    (call,) = recorder.calls
    async with pool.acquire() as conn:
        await _fill(conn, now)
        for names, seq in await _plans(conn, *call):
            assert names == {"targets_due_following", "targets_due_to_publish_instagram",
                             "targets_due_to_publish_youtube"} and not seq


async def test_the_wake_up_time_skips_only_the_held_back_platforms_waiting_targets(pool):
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        await _fill(conn, now)
        assert await repo.next_due_at(conn) == now - timedelta(hours=5), "the backlog, when nothing is held back"
        assert await repo.next_due_at(conn, ["tiktok"]) == now - timedelta(minutes=3), "instagram's pending"
        assert await repo.next_due_at(conn, ["tiktok", "instagram"]) == now - timedelta(minutes=2)
        every = [p.value for p in Platform]
        assert await repo.next_due_at(conn, every) == now - timedelta(minutes=1), "tiktok's status check"
        await conn.execute("UPDATE targets SET due_at = NULL WHERE status = 'processing'")
        assert await repo.next_due_at(conn, every) == now + timedelta(hours=1), "the engagement collection"
        await conn.execute("UPDATE targets SET due_at = NULL WHERE status = 'posted'")
        assert await repo.next_due_at(conn, every) is None


async def test_claims_take_each_kind_apart_from_the_backlog(pool):
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        await _fill(conn, now)
        async with conn.transaction():
            claimed, full = await repo.claim_due(conn, now, 5, {"tiktok": 0, "instagram": 5, "youtube": 5})
            got = sorted((d.platform, d.state.status.value) for d in claimed)
        assert got == [("instagram", "pending"), ("tiktok", "processing"), ("youtube", "retry_wait")]
        assert not full
        async with conn.transaction():
            claimed, full = await repo.claim_due(conn, now, 5, {"tiktok": 3, "instagram": 0, "youtube": 0})
            assert [d.state.due_at for d in claimed if d.state.status.value == "pending"] == [
                now - timedelta(hours=5) + timedelta(seconds=i) for i in range(3)], "the oldest first"


async def test_an_operators_reference_is_looked_up_by_index(pool):
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        ids = await _fill(conn, now)
        for ref in ("up-1", str(ids["target"]), str(ids["post1"])):
            recorder = Recorder()
            await repo.lock_targets_of(recorder, ref)
            (call,) = recorder.calls
            for names, seq in await _plans(conn, *call):
                assert not seq, f"no table read whole for {ref}"
                assert {"posts_upstream_id_key", "targets_post_id"} <= names


async def test_an_operators_reference_finds_a_target_a_post_or_an_upstream_id(pool):
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        ids = await _fill(conn, now)
        async with conn.transaction():
            (one,) = await repo.lock_targets_of(conn, str(ids["target"]))
            assert one.state.target_id == ids["target"] and one.upstream_id == "up-1"
            by_post = await repo.lock_targets_of(conn, str(ids["post1"]))
            assert len(by_post) == 3 and {t.post_id for t in by_post} == {ids["post1"]}
            assert [t.state.target_id for t in by_post] == sorted(t.state.target_id for t in by_post)
            by_upstream = await repo.lock_targets_of(conn, "up-1")
            assert [t.state.target_id for t in by_upstream] == [t.state.target_id for t in by_post]
            assert len(await repo.lock_targets_of(conn, "up-0")) == 200
            (by_uuid_upstream,) = await repo.lock_targets_of(conn, str(ids["uuid_upstream"]))
            assert by_uuid_upstream.post_id == ids["post3"], "an upstream id may look like a uuid"
            assert await repo.lock_targets_of(conn, "nothing") == []
            assert await repo.lock_targets_of(conn, str(uuid.uuid4())) == []
