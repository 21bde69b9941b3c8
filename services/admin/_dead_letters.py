"""Dead letters kept by the notifier: list, show, and replay to where they came from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from services.runtime import TRUNCATED_KEY_BYTES, payload_digest, topic_partitions


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


# -- the record at a letter's source position ------------------------------------------------

SOURCE_READ_TIMEOUT_SECONDS = 15.0
# a record is at most the broker's message limit (1 MiB by default): room for a larger one
_SOURCE_FETCH_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """What is at a dead letter's source position now, and whether it is the letter's record.

    `state`: "matches" (the whole record's digest is the letter's), "differs" (another record:
    do not replay from there), "unverified" (a letter without a digest, from an older producer,
    whose record there has its size and starts as it does), "unavailable" (the broker does not
    hold a record there any more, or could not be read: `detail` says which)."""

    state: str
    detail: str
    sha256: str | None = None
    payload_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "sha256": self.sha256,
                "payload_bytes": self.payload_bytes}


def check_source_record(letter: Mapping[str, Any], key: bytes | None, value: bytes) -> SourceRecord:
    """Whether the record (`key`, `value`) read at `letter`'s source position is the letter's."""
    where = f"{letter['source_topic']}@{letter['source_partition']}/{letter['source_offset']}"
    digest = payload_digest(value)
    seen = {"sha256": digest, "payload_bytes": len(value)}
    expected = letter.get("payload_sha256")
    if expected is not None and digest != expected:
        return SourceRecord("differs", f"the record at {where} is not this letter's: its SHA-256 is {digest} "
                                       f"({len(value)} bytes), the letter's {expected} ({letter['payload_bytes']} "
                                       "bytes); the topic was deleted or recreated since: do not replay from it",
                            **seen)
    letter_key = bytes(letter["key"]) if letter["key"] is not None else None
    if letter_key is not None and not _key_fits(letter_key, key or b""):
        return SourceRecord("differs", f"the record at {where} is not this letter's: its key differs; the topic was "
                                       "deleted or recreated since: do not replay from it", **seen)
    if expected is not None:
        return SourceRecord("matches", f"the record at {where} is this letter's (SHA-256 {digest}, {len(value)} "
                                       "bytes): replay it from there", **seen)
    # an older letter without a digest: only its size and the part it kept can tell
    kept = bytes(letter["payload"])
    size = letter["payload_bytes"]
    if (size is not None and size != len(value)) or not value.startswith(kept):
        return SourceRecord("differs", f"the record at {where} is not this letter's: {len(value)} bytes"
                                       + (f", the letter's {size}" if size is not None else "")
                                       + ("" if value.startswith(kept) else ", and it starts otherwise")
                                       + "; the topic was deleted or recreated since: do not replay from it",
                            **seen)
    return SourceRecord("unverified", f"the record at {where} has the letter's size and starts as it does, but the "
                                      "letter (kept before whole-record digests) cannot prove it is the same: "
                                      "check it before replaying it", **seen)


def _key_fits(kept: bytes, key: bytes) -> bool:
    """A letter's key against the record's: the same, or (cut to fit) its start."""
    return kept == key or (len(kept) >= TRUNCATED_KEY_BYTES and key.startswith(kept))


async def read_source_record(bootstrap_servers: str, letter: Mapping[str, Any], *,
                             timeout: float = SOURCE_READ_TIMEOUT_SECONDS) -> SourceRecord:
    """Read the record at `letter`'s source position, if the broker still holds it, and check it
    against the letter (`check_source_record`); never waits more than about `timeout`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import OffsetOutOfRangeError

    topic, partition, offset = letter["source_topic"], letter["source_partition"], letter["source_offset"]
    where = f"{topic}@{partition}/{offset}"
    if partition is None or offset is None:
        return SourceRecord("unavailable", "the letter has no source position (its message was never consumed)")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="none", request_timeout_ms=int(timeout * 1000),
                                max_partition_fetch_bytes=_SOURCE_FETCH_BYTES, fetch_max_bytes=_SOURCE_FETCH_BYTES)
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        tp = TopicPartition(topic, partition)
        # the cluster as it is now (what the consumer holds may predate a deletion)
        left_ms = int(max(deadline - loop.time(), 0.1) * 1000)
        partitions = (await asyncio.wait_for(topic_partitions(bootstrap_servers, request_timeout_ms=left_ms),
                                             left_ms / 1000)).get(topic)
        if not partitions:
            return SourceRecord("unavailable", f"its source topic {topic!r} does not exist")
        if partition not in partitions:
            return SourceRecord("unavailable", f"its source topic {topic!r} has no partition {partition}")
        consumer.assign([tp])
        start = (await asyncio.wait_for(consumer.beginning_offsets([tp]), max(deadline - loop.time(), 0.1)))[tp]
        if offset < start:
            return SourceRecord("unavailable", f"the broker no longer holds {where} (the partition starts at {start})")
        consumer.seek(tp, offset)
        while (left := deadline - loop.time()) > 0:
            try:
                batches = await consumer.getmany(tp, timeout_ms=int(min(left, 1.0) * 1000), max_records=1)
            except OffsetOutOfRangeError:
                return SourceRecord("unavailable", f"the broker holds no record at {where} (out of range)")
            for record in batches.get(tp, ()):
                if record.offset != offset:
                    return SourceRecord("unavailable", f"the broker holds no record at {where} "
                                                       f"(the next is at offset {record.offset})")
                return check_source_record(letter, record.key, record.value or b"")
        return SourceRecord("unavailable", f"no record came from {where} within {timeout:g} s "
                                           "(the partition may end before it)")
    except (asyncio.TimeoutError, TimeoutError):
        return SourceRecord("unavailable", f"the broker did not answer within {timeout:g} s")
    except Exception as exc:  # unreachable, refused: the letter is still shown
        return SourceRecord("unavailable", f"could not read {where}: {_why(exc)}")
    finally:
        await consumer.stop()
