"""A service started while its database is away waits for it instead of exiting."""

import asyncio
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.devstack.outage import OutageProxy
from services.runtime import open_database
from services.runtime._failures import is_transient

pytestmark = pytest.mark.integration


async def test_the_pool_opens_once_the_database_is_back(database_url):
    proxy = OutageProxy.for_postgres(database_url)
    await proxy.start()
    try:
        proxy.cut()
        opening = asyncio.create_task(open_database(proxy.url_through(database_url), TracerProvider()))
        await asyncio.sleep(1.5)
        assert not opening.done(), "still waiting, not failed"
        proxy.restore()
        pool = await asyncio.wait_for(opening, 15)
        try:
            assert await pool.fetchval("SELECT count(*) FROM schema_migrations") > 0, "migrated once it could"
        finally:
            await pool.close()
    finally:
        await proxy.stop()


async def test_it_gives_up_after_its_wait(database_url):
    proxy = OutageProxy.for_postgres(database_url)
    await proxy.start()
    try:
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            await open_database(proxy.url_through(database_url), TracerProvider(), wait_seconds=1.0)
        waited = time.monotonic() - started
    finally:
        await proxy.stop()
    assert is_transient(raised.value), f"the outage itself is raised, not {raised.value!r}"
    assert 0.5 <= waited < 10, waited
