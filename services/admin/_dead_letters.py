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


async def replay(conn: asyncpg.Connection, producer: AIOKafkaProducer,
                 letter_ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Send each letter's original key, payload and headers to its source topic again, and
    count the replay; a letter that fails again comes back as a new dead letter. Returns the
    ids replayed, and those not: truncated letters, which hold only part of their message."""
    found = await conn.fetch("SELECT * FROM dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id", list(letter_ids))
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
    return [r["id"] for r in rows], [r["id"] for r in found if r["truncated"]]
