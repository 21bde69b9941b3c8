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


async def read_only_reason(conn: asyncpg.Connection) -> str | None:
    """Why this session cannot write, or None when it can."""
    row = await conn.fetchrow(
        "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS read_only")
    if row["standby"]:
        return "read-only: the server is a standby (pg_is_in_recovery)"
    if row["read_only"] != "off":
        return "read-only session: transaction_read_only is on (default_transaction_read_only)"
    return None


def database_ready(
    pool_of: Callable[[], asyncpg.Pool | None], *, writable: bool = True
) -> Callable[[], Awaitable[bool | tuple[bool, str]]]:
    """A /readyz check for a service's pool (`pool_of`: it exists only once the service is set up).

    `writable` (every service that opens a pool writes: queue, planner, publishers, notifier):
    a session that cannot write fails the check too. After a failover a pooled session may be
    on the demoted primary, or a new one on a standby behind a DNS name not yet moved; there
    `SELECT 1` answers while every write fails with 25006. A read-only session makes the check
    give the pool's sessions up (each is replaced as it is next acquired, so they do not stay on
    that node for as long as they are busy) and judge by a fresh one: where the name points now."""

    async def ready() -> bool | tuple[bool, str]:
        pool = pool_of()
        if pool is None:
            return False
        async with pool.acquire() as conn:
            if not writable:
                return await conn.fetchval("SELECT 1") == 1
            reason = await read_only_reason(conn)
        if reason is None:
            return True
        await pool.expire_connections()
        async with pool.acquire() as conn:
            reason = await read_only_reason(conn)
        return True if reason is None else (False, reason)

    return ready
