"""The database schema: plain SQL migrations, applied in order at start, recorded, safe to run
twice or concurrently. Every service that opens a pool applies them (see `open_database`)."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

log = logging.getLogger("autopost.migrate")

# Any fixed number: replicas starting together take turns on it.
_LOCK_KEY = 0x6175746F706F7374
# Not the pool's 30 s command timeout: an index built on a large table takes what it takes,
# and replicas starting meanwhile wait their turn.
MIGRATION_TIMEOUT_SECONDS = 3600.0
# A migration waiting for a table's lock holds up every query behind it: give up soon (the
# start fails and is retried) rather than stall the running services.
_LOCK_TIMEOUT = "10s"


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("services.runtime") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


async def apply_migrations(conn: asyncpg.Connection) -> list[str]:
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY, timeout=MIGRATION_TIMEOUT_SECONDS)
        await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in migration_files():
            if version in done:
                continue
            await conn.execute(sql, timeout=MIGRATION_TIMEOUT_SECONDS)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
    if applied:
        log.info("applied migrations %s", applied)
    return applied
