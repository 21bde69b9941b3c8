"""Dead letters kept by the notifier: list, show, and replay to where they came from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer


async def list_dead_letters(conn: asyncpg.Connection, *, include_replayed: bool, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, consumer, reason, source_topic, source_partition, source_offset, failed_at,
                  replays, replayed_at, left(message, 120) AS message
           FROM dead_letters WHERE $1 OR replayed_at IS NULL ORDER BY id DESC LIMIT $2""",
        include_replayed, limit,
    )
    return [dict(r) for r in rows]


async def dead_letter(conn: asyncpg.Connection, letter_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", letter_id)
    return dict(row) if row else None


# Letters read (payloads and all) and sent at a time: a replay of many never holds them all, and
# a page of letters near the size kept whole (about 1 MiB) is still only about 100 MiB.
REPLAY_PAGE = 100


async def last_unreplayed_id(conn: asyncpg.Connection) -> int | None:
    """The newest letter not replayed yet: where `replay_unreplayed` stops (None: there is none)."""
    return await conn.fetchval("SELECT max(id) FROM dead_letters WHERE replayed_at IS NULL")


class ReplayFailed(Exception):
    """Letters that could not be sent (the others were, and were counted): `failed` maps each
    id to why. Raised only when the caller did not ask for the failures itself."""

    def __init__(self, failed: dict[int, str]):
        super().__init__("not sent: " + "; ".join(f"{i}: {why}" for i, why in sorted(failed.items())))
        self.failed = failed


async def replay(conn: asyncpg.Connection, producer: AIOKafkaProducer, letter_ids: Sequence[int], *,
                 page: int | None = None, failed: dict[int, str] | None = None,
                 topics: Collection[str] | None = None) -> tuple[list[int], list[int]]:
    """Send each letter's original key, payload and headers to its source topic again, and
    count the replay; a letter that fails again comes back as a new dead letter. Returns the
    ids replayed, and those not: truncated letters, which hold only part of their message.
    `page` (REPLAY_PAGE) letters at a time, each page counted as replayed once sent.

    A letter that cannot be sent (its topic gone, too large for the broker, refused) is skipped,
    not counted, and noted in `failed` (id: why); the others are sent and counted. Without
    `failed`, ReplayFailed is raised once every other letter was sent. `topics`, if given, are
    the topics that exist: a letter for another is not sent (a producer could create it)."""
    ids = sorted(set(letter_ids))

    async def pages(size: int) -> AsyncIterator[Sequence[asyncpg.Record]]:
        for start in range(0, len(ids), size):
            yield await conn.fetch("SELECT * FROM dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id",
                                   ids[start:start + size])

    return await _replay_pages(conn, producer, pages, page, failed, topics)


async def replay_unreplayed(conn: asyncpg.Connection, producer: AIOKafkaProducer, up_to: int, *,
                            page: int | None = None, failed: dict[int, str] | None = None,
                            topics: Collection[str] | None = None) -> tuple[list[int], list[int]]:
    """`replay` of every letter not replayed yet up to id `up_to` (taken before: the letters its
    own replays bring back are newer, and not sent again), `page` at a time in id order. A letter
    that cannot be sent is skipped (and left not replayed), as in `replay`."""

    async def pages(size: int) -> AsyncIterator[Sequence[asyncpg.Record]]:
        after = 0  # each page read once the one before was replayed: by id, not by offset
        while rows := await conn.fetch(
                """SELECT * FROM dead_letters WHERE replayed_at IS NULL AND id > $1 AND id <= $2
                   ORDER BY id LIMIT $3""", after, up_to, size):
            yield rows
            after = rows[-1]["id"]

    return await _replay_pages(conn, producer, pages, page, failed, topics)


async def _replay_pages(conn: asyncpg.Connection, producer: AIOKafkaProducer,
                        pages: Callable[[int], AsyncIterator[Sequence[asyncpg.Record]]], page: int | None,
                        failed: dict[int, str] | None,
                        topics: Collection[str] | None) -> tuple[list[int], list[int]]:
    """What `replay` and `replay_unreplayed` share: each page of `pages(size)` sent (and counted)
    before the next is read; the ids replayed and truncated; ReplayFailed without `failed`."""
    replayed: list[int] = []
    truncated: list[int] = []
    failures: dict[int, str] = {} if failed is None else failed
    async for rows in pages(page or REPLAY_PAGE):
        await _replay_rows(conn, producer, rows, replayed, truncated, failures, topics)
    if failed is None and failures:
        raise ReplayFailed(failures)
    return replayed, truncated


async def _replay_rows(conn: asyncpg.Connection, producer: AIOKafkaProducer, found: Sequence[asyncpg.Record],
                       replayed: list[int], truncated: list[int], failed: dict[int, str],
                       topics: Collection[str] | None) -> None:
    """Send a page's letters, each on its own: one that cannot be sent is noted in `failed` and
    the rest still go; only those the broker acknowledged are counted as replayed."""
    pending = []
    gone: dict[str, str] = {}  # a topic one letter could not reach: the next ones are not tried
    for r in found:
        if r["truncated"]:
            continue
        topic = r["source_topic"]
        if topics is not None and topic not in topics:
            failed[r["id"]] = f"its source topic {topic!r} does not exist"
            continue
        if topic in gone:
            failed[r["id"]] = gone[topic]
            continue
        try:
            future = await producer.send(topic, bytes(r["payload"]), key=bytes(r["key"]) if r["key"] else None,
                                         headers=[(k, v.encode()) for k, v in r["headers"].items()])
        except Exception as exc:  # too large, a topic whose metadata never comes, ...
            failed[r["id"]] = _why(exc)
            if _is_timeout(exc):
                gone[topic] = f"its source topic {topic!r} did not answer ({_why(exc)})"
            continue
        pending.append((r["id"], future))
    sent = []
    for letter_id, future in pending:
        try:
            await future
        except Exception as exc:  # the broker refused or never acknowledged it
            failed[letter_id] = _why(exc)
            continue
        sent.append(letter_id)
    if sent:
        await conn.execute(
            "UPDATE dead_letters SET replays = replays + 1, replayed_at = now() WHERE id = ANY($1::bigint[])", sent)
    replayed.extend(sent)
    truncated.extend(r["id"] for r in found if r["truncated"])


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaTimeoutError

    return isinstance(exc, (KafkaTimeoutError, TimeoutError))
