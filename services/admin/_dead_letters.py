"""Dead letters kept by the notifier: list, show, and replay to where they came from."""

from __future__ import annotations

from collections.abc import Sequence
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


async def replay(conn: asyncpg.Connection, producer: AIOKafkaProducer, letter_ids: Sequence[int], *,
                 page: int | None = None) -> tuple[list[int], list[int]]:
    """Send each letter's original key, payload and headers to its source topic again, and
    count the replay; a letter that fails again comes back as a new dead letter. Returns the
    ids replayed, and those not: truncated letters, which hold only part of their message.
    `page` (REPLAY_PAGE) letters at a time, each page counted as replayed once sent."""
    page = page or REPLAY_PAGE
    ids = sorted(set(letter_ids))
    replayed: list[int] = []
    truncated: list[int] = []
    for start in range(0, len(ids), page):
        rows = await conn.fetch("SELECT * FROM dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id",
                                ids[start:start + page])
        await _replay_rows(conn, producer, rows, replayed, truncated)
    return replayed, truncated


async def replay_unreplayed(conn: asyncpg.Connection, producer: AIOKafkaProducer, up_to: int, *,
                            page: int | None = None) -> tuple[list[int], list[int]]:
    """`replay` of every letter not replayed yet up to id `up_to` (taken before: the letters its
    own replays bring back are newer, and not sent again), `page` at a time in id order."""
    page = page or REPLAY_PAGE
    replayed: list[int] = []
    truncated: list[int] = []
    after = 0
    while True:
        rows = await conn.fetch(
            """SELECT * FROM dead_letters WHERE replayed_at IS NULL AND id > $1 AND id <= $2
               ORDER BY id LIMIT $3""", after, up_to, page)
        if not rows:
            return replayed, truncated
        await _replay_rows(conn, producer, rows, replayed, truncated)
        after = rows[-1]["id"]


async def _replay_rows(conn: asyncpg.Connection, producer: AIOKafkaProducer, found: Sequence[asyncpg.Record],
                       replayed: list[int], truncated: list[int]) -> None:
    rows = [r for r in found if not r["truncated"]]
    sent = [
        await producer.send(r["source_topic"], bytes(r["payload"]), key=bytes(r["key"]) if r["key"] else None,
                            headers=[(k, v.encode()) for k, v in r["headers"].items()])
        for r in rows
    ]
    for future in sent:
        await future
    await conn.execute(
        "UPDATE dead_letters SET replays = replays + 1, replayed_at = now() WHERE id = ANY($1::bigint[])",
        [r["id"] for r in rows],
    )
    replayed.extend(r["id"] for r in rows)
    truncated.extend(r["id"] for r in found if r["truncated"])
