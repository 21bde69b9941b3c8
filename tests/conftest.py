"""Shared fixtures: a Tansu broker and a Postgres, started only when a test asks for them.

Nothing here is skipped: if the broker or Postgres cannot start, the test errors with the reason.
Imports of the dev stack are inside the fixtures so unit tests do not pay for aiokafka/asyncpg.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import asyncpg

    from services.devstack import TansuBroker


@pytest.fixture(scope="session")
async def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TansuBroker]:
    """One memory-only broker for the whole session (never restarted: a restart loses offsets)."""
    from services.devstack import start_tansu

    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    try:
        broker = await start_tansu(log_path=log_path)
    except Exception as exc:
        raise pytest.fail.Exception(f"could not start the Tansu broker for the tests: {exc}", pytrace=False) from None
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tansu_broker: TansuBroker) -> str:
    """"127.0.0.1:PORT" of the session broker."""
    return tansu_broker.bootstrap


@pytest.fixture
async def topic_prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A unique `t<8 hex>.` prefix; every topic starting with it is deleted at teardown (frees Tansu memory)."""
    from services.devstack import delete_topics, list_topics

    prefix = f"t{secrets.token_hex(4)}."
    yield prefix
    ours = [t for t in await list_topics(kafka_bootstrap) if t.startswith(prefix)]
    await delete_topics(kafka_bootstrap, ours)


@pytest.fixture(scope="session")
def database_admin_url() -> Iterator[str]:
    """A DSN allowed to create databases: $DATABASE_URL, else 127.0.0.1:5432/test, else embedded Postgres."""
    from services.devstack import resolve_database

    try:
        database = resolve_database()
    except Exception as exc:
        raise pytest.fail.Exception(f"no Postgres for the tests: {exc}", pytrace=False) from None
    try:
        yield database.url
    finally:
        database.stop()


@pytest.fixture
async def database_url(database_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for this test (`autopost_t_<hex>`), dropped at teardown."""
    from services.devstack import create_database, drop_database

    name = f"autopost_t_{secrets.token_hex(6)}"
    url = await create_database(database_admin_url, name)
    try:
        yield url
    finally:
        await drop_database(database_admin_url, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's database, its schema migrated; closed at teardown."""
    from services.runtime import apply_migrations, create_pool

    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        yield pool
    finally:
        await pool.close()
