"""The asyncpg pool: JSON as orjson, traced."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from opentelemetry.sdk.trace import TracerProvider

from ._startup import STARTUP_WAIT_SECONDS, when_reachable

_instrumented = False


def instrument_asyncpg(provider: TracerProvider) -> None:
    """asyncpg instrumentation patches the driver process-wide: do it once."""
    global _instrumented
    if _instrumented:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    _instrumented = True


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: no service sets session
    variables, opens cursors, LISTENs or takes session advisory locks on a pooled connection
    (the dispatcher LISTENs on a connection of its own; quota locks end with their transaction).
    asyncpg still rolls back a transaction left open. Its default reset is one more round trip
    per `acquire`: a tenth of a publisher's CPU."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=30,
        reset=_no_session_state,
    )


async def open_database(dsn: str, provider: TracerProvider, *, max_size: int = 10,
                        wait_seconds: float = STARTUP_WAIT_SECONDS) -> asyncpg.Pool:
    """The pool a service uses, with the schema brought up to date first (safe on every start);
    a database that is away at start is waited for, up to `wait_seconds`."""
    from ._migrate import apply_migrations

    instrument_asyncpg(provider)

    async def attempt() -> asyncpg.Pool:
        pool = await create_pool(dsn, max_size=max_size)
        try:
            async with pool.acquire() as conn:
                await apply_migrations(conn)
        except BaseException:
            pool.terminate()
            raise
        return pool

    return await when_reachable("database", attempt, wait_seconds)


async def close_database(pool: asyncpg.Pool | None, timeout: float = 10.0) -> None:
    """Close a service's pool, if it was opened; a close that hangs is cut short."""
    if pool is not None:
        await asyncio.wait_for(pool.close(), timeout=timeout)


def database_ready(pool_of: Callable[[], asyncpg.Pool | None]) -> Callable[[], Awaitable[bool]]:
    """A /readyz check for a service's pool (`pool_of`: it exists only once the service is set up)."""

    async def ready() -> bool:
        pool = pool_of()
        if pool is None:
            return False
        async with pool.acquire() as conn:
            return await conn.fetchval("SELECT 1") == 1

    return ready
