"""The database readiness check of a service that writes: a standby answers `SELECT 1` too."""

import contextlib

from services.runtime import database_ready


class Pool:
    """Sessions that answer as the nodes `answers` name, one per session opened."""

    def __init__(self, *answers: dict):
        self.answers, self.session, self.expired = list(answers), 0, 0

    @contextlib.asynccontextmanager
    async def acquire(self):
        yield self

    async def fetchrow(self, sql):
        return self.answers[min(self.session, len(self.answers) - 1)]

    async def fetchval(self, sql):
        return 1

    async def expire_connections(self):
        self.expired += 1
        self.session += 1  # the next session is a new one


PRIMARY = {"standby": False, "read_only": "off"}
STANDBY = {"standby": True, "read_only": "on"}


async def test_a_standby_is_not_ready_for_a_service_that_writes():
    pool = Pool(STANDBY)
    ok, detail = await database_ready(lambda: pool)()
    assert ok is False and "standby" in detail and pool.expired == 1
    assert await database_ready(lambda: pool, writable=False)() is True


async def test_a_stale_session_on_the_old_primary_is_given_up_and_a_fresh_one_judged():
    pool = Pool(STANDBY, PRIMARY)  # the name points at the new primary already
    assert await database_ready(lambda: pool)() is True and pool.expired == 1
    pool = Pool(PRIMARY)
    assert await database_ready(lambda: pool)() is True and pool.expired == 0


async def test_no_pool_yet_is_not_ready():
    assert await database_ready(lambda: None)() is False
