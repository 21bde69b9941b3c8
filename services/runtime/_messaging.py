"""Records in, messages out: what handlers see of Kafka."""

from __future__ import annotations

import asyncio
import base64
import hashlib
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


# The producer's limit on one message (aiokafka's max_request_size; build_broker keeps its
# default of 1 MiB, as does the broker's message.max.bytes). A dead letter is measured as it is
# sent: its encoded JSON (base64 is 4/3 of the bytes it holds; JSON escapes a control character
# in a header to 6 bytes; invalid UTF-8 in a header or key becomes U+FFFD, 3 bytes) plus its
# key, leaving the rest for the trace headers and the record's own framing.
PRODUCER_MAX_REQUEST_BYTES = 1024 * 1024
LETTER_MAX_BYTES = PRODUCER_MAX_REQUEST_BYTES - 64 * 1024
LETTER_KEY_LIMIT = 64 * 1024  # the dead letter's own Kafka key, encoded
TRUNCATED_PAYLOAD_BYTES = 64 * 1024  # what a letter too large to send whole keeps of the payload
TRUNCATED_KEY_BYTES = 1024  # and of a key too large to keep whole
MESSAGE_CHARS = 2000


def dead_letter_for(
    record: "Record | Outgoing", *, reason: str, message: str, consumer: str, topic: str | None = None
) -> Outgoing:
    """The dead letter of a consumed record, or of a message that was never consumed (the
    planner's post that the queue never stored), to send to the dead-letter `topic`. It always
    fits in one message the producer sends (`LETTER_MAX_BYTES` with its key)."""
    key = _key_bytes(record)
    text_key = _cut_utf8(key.decode("utf-8", "replace"), LETTER_KEY_LIMIT) if key is not None else ""
    letter = _dead_letter(record, reason=reason, message=message, consumer=consumer,
                          limit=LETTER_MAX_BYTES - len(text_key.encode()))
    return Outgoing.of(topic or Topics.DEAD_LETTER, text_key, letter)


def _key_bytes(record: "Record | Outgoing") -> bytes | None:
    return record.key.encode() if isinstance(record.key, str) else record.key


def _cut_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, on a character boundary."""
    encoded = text.encode()
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


def dead_letter_of(record: "Record | Outgoing", *, reason: str, message: str, consumer: str) -> DeadLetter:
    """`dead_letter_for`'s letter itself: the record whole, to replay to its topic, unless its
    encoded letter would not fit in a message; then cut to fit (`truncated`): the payload to its
    first part, then the headers dropped, then the key cut, until it does. Counted as
    dead-lettered."""
    return _dead_letter(record, reason=reason, message=message, consumer=consumer, limit=LETTER_MAX_BYTES)


def _dead_letter(record: "Record | Outgoing", *, reason: str, message: str, consumer: str,
                 limit: int) -> DeadLetter:
    key = _key_bytes(record)
    failed_at = datetime.now(timezone.utc)
    # of the whole value, before any cut: what tells this record from another kept the same
    digest = payload_digest(record.value)

    def letter_of(payload: bytes, headers: dict[str, str], key: bytes | None, text: str,
                  truncated: bool) -> DeadLetter:
        return DeadLetter(
            reason=reason,
            message=text,
            consumer=consumer,
            source_topic=record.topic,
            source_partition=getattr(record, "partition", None),
            source_offset=getattr(record, "offset", None),
            key_base64=base64.b64encode(key).decode() if key is not None else None,
            payload_base64=base64.b64encode(payload).decode(),
            headers=headers,
            failed_at=failed_at,
            payload_bytes=len(record.value),
            truncated=truncated,
            payload_sha256=digest,
        )

    # each a smaller letter than the one before; the first that fits is sent
    text = message[:MESSAGE_CHARS]
    payload = record.value[:TRUNCATED_PAYLOAD_BYTES]
    short_key = key[:TRUNCATED_KEY_BYTES] if key is not None else None
    attempts = (
        (record.value, record.headers, key, text),
        (payload, record.headers, key, text),
        (payload, {}, key, text),
        (payload, {}, short_key, text),
        (b"", {}, short_key, text),
        (b"", {}, None, text[:200]),
    )
    letter = None
    for number, (payload, headers, key, text) in enumerate(attempts):
        letter = letter_of(payload, headers, key, text, truncated=number > 0)
        if len(letter.to_bytes()) <= limit:
            break
    assert letter is not None
    DEAD_LETTERS.labels(consumer, reason).inc()
    return letter


def payload_digest(value: bytes) -> str:
    """A dead letter's `payload_sha256`: the SHA-256 of a record's whole value, in hex."""
    return hashlib.sha256(value).hexdigest()


def bare_dead_letter(letter: Outgoing) -> Outgoing:
    """A dead letter the broker refused for its size, without its record: only where the record
    was (`truncated`, no payload, headers or key) and its digest, to replay from its source
    position."""
    whole = DeadLetter.from_bytes(letter.value)
    bare = whole.model_copy(update={"payload_base64": "", "headers": {}, "key_base64": None,
                                    "truncated": True, "message": whole.message[:200]})
    return Outgoing(topic=letter.topic, key="", value=bare.to_bytes(), headers=dict(letter.headers))


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
