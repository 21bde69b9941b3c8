"""A database session that cannot write (a demoted primary, a standby behind a stale DNS name, a
database set read-only) makes the services that write unready, and what fails on it is waited
out as an outage."""

import asyncpg
import pytest

from services.queue.app import QueueService
from services.runtime import ServiceContext, create_pool, database_ready, is_transient
from harness import settings_for

pytestmark = pytest.mark.integration


async def _read_only(admin_url: str, database: str, on: bool) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        if on:
            await admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        else:
            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
    finally:
        await admin.close()


async def test_a_read_only_session_makes_the_queue_unready_until_the_database_takes_writes_again(
    database_admin_url, database_url
):
    conn = await asyncpg.connect(database_url)
    try:
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute("CREATE TABLE probe (id int)")
    finally:
        await conn.close()

    service = QueueService(ServiceContext("queue", settings_for("127.0.0.1:1", "", database_url)))
    ready = service.readiness_checks()["database"]
    service.pool = await create_pool(database_url)
    try:
        assert await ready() is True

        await _read_only(database_admin_url, database, True)
        await service.pool.expire_connections()  # the pool's sessions now open read-only
        ok, detail = await ready()
        assert ok is False and "read-only" in detail

        # what a handler meets on such a session is an outage: its batch is read again later
        with pytest.raises(asyncpg.PostgresError) as caught:
            async with service.pool.acquire() as conn:
                await conn.execute("INSERT INTO probe VALUES (1)")
        assert caught.value.sqlstate == "25006" and is_transient(caught.value)

        # a service that only reads may use the same session
        assert await database_ready(lambda: service.pool, writable=False)() is True

        # the database takes writes again: the check gave its read-only sessions up, so the pool
        # connects afresh (after a failover, to the new primary) instead of keeping them
        await _read_only(database_admin_url, database, False)
        assert await ready() is True
        async with service.pool.acquire() as conn:
            await conn.execute("INSERT INTO probe VALUES (2)")
    finally:
        await _read_only(database_admin_url, database, False)
        await service.pool.close()
