"""Migration 016: who released a planner slot is said (`released_by`), no longer read off
`queue_version` 0; the slots released so far keep what they meant, and `released` stays in
step for the planners of the release before, during a rolling update."""

from datetime import datetime, timedelta, timezone

import pytest

from contracts import Platform, post_id_for, target_id_for
from services.planner import store
from services.runtime import apply_migrations, create_pool

pytestmark = pytest.mark.integration

KEY = (Platform.TIKTOK, "brand")
NOW = datetime.now(timezone.utc).replace(microsecond=0)


async def _as_before_016(conn) -> None:
    """The schema as it was before migration 016."""
    await conn.execute("ALTER TABLE planner_slots DROP COLUMN released_by")
    await conn.execute("DELETE FROM schema_migrations WHERE version LIKE '016%'")


async def test_the_slots_released_so_far_keep_who_released_them(database_url):
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            await _as_before_016(conn)
            # name: (released, queue_version, its post back in the queue, hours from now)
            slots = {
                "held": (False, 0, False, 1),
                "moved by the queue": (False, 3, True, 2),
                "given up": (True, 0, False, 3),
                "given up, then stored": (True, 0, True, 4),
                "cancelled in the queue": (True, 5, True, 5),
            }
            for name, (released, version, stored, hours) in slots.items():
                post_id = post_id_for(name)
                await conn.execute(
                    """INSERT INTO planner_slots (target_id, post_id, platform, account_id, content_type, timezone,
                                                  slot_at, expected_engagement, strategy, released, queue_version)
                       VALUES ($1, $2, 'tiktok', 'brand', 'video', 'UTC', $3, 0.1, 'asap', $4, $5)""",
                    target_id_for(post_id, *KEY), post_id, NOW + timedelta(hours=hours), released, version)
                if stored:
                    await conn.execute("INSERT INTO posts (post_id, upstream_id, content) VALUES ($1, $2, '{}')",
                                       post_id, name)

            assert await apply_migrations(conn) == ["016_planner_slots_released_by"]
            found = {r["post_id"]: r["released_by"] for r in await conn.fetch(
                "SELECT post_id, released_by FROM planner_slots")}
            assert {name: found[post_id_for(name)] for name in slots} == {
                "held": None, "moved by the queue": None, "given up": "planner",
                "given up, then stored": "planner", "cancelled in the queue": "queue"}
            calendar = (await store.calendars(conn, [KEY], NOW)).get(KEY, [])
            assert calendar == [(NOW + timedelta(hours=h)).timestamp() for h in (1, 2, 4)], \
                "held, and given up but back; not given up for good, nor cancelled"
            await store.release_given_up(conn, [post_id_for("held")])
            assert await conn.fetchval(
                "SELECT count(*) FROM planner_slots WHERE released <> (released_by IS NOT NULL)") == 0, \
                "the column older planners read says the same"
            with pytest.raises(Exception, match="check"):
                await conn.execute("UPDATE planner_slots SET released_by = 'operator'")
    finally:
        await pool.close()
