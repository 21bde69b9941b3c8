"""Records in, messages out: what handlers see of Kafka."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from contracts import DeadLetter, Message, Topics

from opentelemetry import context as otel_context

from ._metrics import DEAD_LETTERS, MESSAGES_SENT
from ._telemetry import context_from, current_carrier, headers_to_dict

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka record, headers decoded to text."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, raw: Any) -> "Record":
        return cls(
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=raw.key,
            value=raw.value if raw.value is not None else b"",
            headers=headers_to_dict(raw.headers),
        )


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: payload already encoded, key as text, trace headers optional."""

    topic: str
    key: str
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, topic: str, key: object, message: Message, headers: dict[str, str] | None = None) -> "Outgoing":
        return cls(topic=topic, key=str(key), value=message.to_bytes(), headers=headers or {})


async def publish_all(broker: "KafkaBroker", messages: Sequence[Outgoing]) -> None:
    """Send every message, pipelined, and return once the broker has confirmed them all.

    Straight through the broker's aiokafka producer: FastStream's per-message publish (its
    telemetry and Prometheus middlewares, a producer span each) cost more than the send. Each
    message carries its trace in its own headers (a dispatched request, its post's); one that
    carries none continues the caller's. MESSAGES_SENT counts them by topic.
    """
    if not messages:
        return
    producer = _producer_of(broker)
    if producer is None:  # not connected through aiokafka (a test broker): FastStream's way
        await _publish_through_faststream(broker, messages)
    else:
        caller: list[tuple[str, bytes]] | None = None
        futures = []
        for m in messages:
            if "traceparent" in m.headers:
                headers = [(k, v.encode()) for k, v in m.headers.items()]
            else:
                if caller is None:
                    caller = [(k, v.encode()) for k, v in current_carrier().items()]
                headers = [*caller, *((k, v.encode()) for k, v in m.headers.items())]
            futures.append(await producer.send(m.topic, m.value, key=m.key.encode(), headers=headers))
        await asyncio.gather(*futures)
    for topic, count in Counter(m.topic for m in messages).items():
        MESSAGES_SENT.labels(topic).inc(count)


def _producer_of(broker: "KafkaBroker") -> Any:
    """The aiokafka producer FastStream connected (None before it has, or for a test broker)."""
    state = getattr(getattr(broker, "_producer", None), "_producer", None)
    return getattr(state, "producer", None)


async def _publish_through_faststream(broker: "KafkaBroker", messages: Sequence[Outgoing]) -> None:
    futures = []
    for m in messages:
        # sent inside the message's own trace context, when it has one
        token = otel_context.attach(context_from(m.headers)) if "traceparent" in m.headers else None
        try:
            futures.append(await broker.publish(
                m.value, m.topic, key=m.key.encode(), headers=dict(m.headers) or None, no_confirm=True
            ))
        finally:
            if token is not None:
                otel_context.detach(token)
    await asyncio.gather(*futures)


# A letter is base64 (4/3 of the payload) plus its envelope; these keep it under the
# broker's default limit of 1 MiB however large the record it holds.
LETTER_PAYLOAD_LIMIT = 600 * 1024
LETTER_HEADERS_LIMIT = 64 * 1024
TRUNCATED_PAYLOAD_BYTES = 64 * 1024


def dead_letter_for(
    record: "Record | Outgoing", *, reason: str, message: str, consumer: str, topic: str | None = None
) -> Outgoing:
    """The dead letter of a consumed record, or of a message that was never consumed (the
    planner's post that the queue never stored), to send to the dead-letter `topic`."""
    letter = dead_letter_of(record, reason=reason, message=message, consumer=consumer)
    key = _key_bytes(record)
    key = key[:LETTER_HEADERS_LIMIT] if key is not None else None
    return Outgoing.of(topic or Topics.DEAD_LETTER, key.decode("utf-8", "replace") if key is not None else "", letter)


def _key_bytes(record: "Record | Outgoing") -> bytes | None:
    return record.key.encode() if isinstance(record.key, str) else record.key


def dead_letter_of(record: "Record | Outgoing", *, reason: str, message: str, consumer: str) -> DeadLetter:
    """`dead_letter_for`'s letter itself: the record whole, to replay to its topic, unless that
    would not fit in a message; then cut to fit (`truncated`). Counted as dead-lettered."""
    payload, headers, key = record.value, record.headers, _key_bytes(record)
    truncated = False
    if len(payload) > LETTER_PAYLOAD_LIMIT:
        payload, truncated = payload[:TRUNCATED_PAYLOAD_BYTES], True
    if sum(len(k) + len(v) for k, v in headers.items()) > LETTER_HEADERS_LIMIT:
        headers, truncated = {}, True
    if key is not None and len(key) > LETTER_HEADERS_LIMIT:
        key, truncated = key[:LETTER_HEADERS_LIMIT], True
    letter = DeadLetter(
        reason=reason,
        message=message[:2000],
        consumer=consumer,
        source_topic=record.topic,
        source_partition=getattr(record, "partition", None),
        source_offset=getattr(record, "offset", None),
        key_base64=base64.b64encode(key).decode() if key is not None else None,
        payload_base64=base64.b64encode(payload).decode(),
        headers=headers,
        failed_at=datetime.now(timezone.utc),
        payload_bytes=len(record.value),
        truncated=truncated,
    )
    DEAD_LETTERS.labels(consumer, reason).inc()
    return letter


def group_by_key(records: Iterable[Record]) -> dict[bytes | None, list[Record]]:
    groups: dict[bytes | None, list[Record]] = {}
    for record in records:
        groups.setdefault(record.key, []).append(record)
    return groups


async def map_by_key(
    records: Sequence[Record],
    handle: Callable[[Record], Awaitable[T]],
    concurrency: int,
) -> list[T]:
    """Handle records of one key in order and different keys concurrently (bounded)."""
    gate = asyncio.Semaphore(concurrency)

    async def run_group(group: list[Record]) -> list[T]:
        async with gate:
            return [await handle(record) for record in group]

    groups = await asyncio.gather(*(run_group(g) for g in group_by_key(records).values()))
    return [result for group in groups for result in group]
