"""The Kafka broker every service uses, and the one way to subscribe: in batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider

from contracts import Topics

from ._failures import is_transient
from ._messaging import Record, dead_letter_for, publish_all
from ._settings import KafkaSettings

log = logging.getLogger("autopost.consumer")

BatchHandler = Callable[[list[Record]], Awaitable[None]]

# Handlers dead-letter the messages they cannot decode. When a handler raises anyway, an outage
# (database or broker unreachable) makes the batch be read again after a pause, so it does not
# turn into a hot loop; anything else is a message the handler cannot process, found by
# handling the batch one record at a time, and set aside on the dead-letter topic.
INFRA_RETRY_SECONDS = 2.0


def build_broker(settings: KafkaSettings, tracer_provider: TracerProvider, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        linger_ms=5,
        request_timeout_ms=10_000,
        retry_backoff_ms=100,
        allow_auto_create_topics=False,
        max_batch_size=256 * 1024,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=tracer_provider)],
        logger=logging.getLogger(f"autopost.{client_id}.kafka"),
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
    )


def subscribe_batches(
    broker: KafkaBroker,
    settings: KafkaSettings,
    *,
    topics: Sequence[str],
    group_id: str,
    handler: BatchHandler,
    max_records: int | None = None,
) -> None:
    """Consume `topics` in batches; offsets are committed only after `handler` returns."""
    subscriber = broker.subscriber(
        *topics,
        group_id=group_id,
        batch=True,
        max_records=max_records or settings.max_poll_records,
        batch_timeout_ms=50,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_records=max_records or settings.max_poll_records,
    )

    dead_letter_topic = settings.topic_prefix + Topics.DEAD_LETTER

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        records = [Record.of(raw) for raw in message.raw_message]
        try:
            await handler(records)
        except Exception as exc:
            await _wait_out_if_transient(exc, f"batch of {len(records)} from {list(topics)}")
            await _isolate_poison(broker, records, handler, group_id, dead_letter_topic)


async def _isolate_poison(
    broker: KafkaBroker, records: list[Record], handler: BatchHandler, consumer: str, topic: str
) -> None:
    """Handle each record alone; dead-letter those that still fail. Handlers are idempotent,
    so the records the failed batch had already applied change nothing the second time."""
    letters = []
    for record in records:
        try:
            await handler([record])
        except Exception as exc:
            await _wait_out_if_transient(exc, f"{record.topic}@{record.partition}/{record.offset}")
            log.exception("dead-lettering %s@%s/%s: it cannot be processed",
                          record.topic, record.partition, record.offset)
            letters.append(dead_letter_for(record, reason="processing_failed",
                                           message=f"{type(exc).__name__}: {exc}", consumer=consumer,
                                           topic=topic))
    await publish_all(broker, letters)


async def _wait_out_if_transient(exc: Exception, what: str) -> None:
    """Re-raise an outage after a pause (the batch is read again); return for anything else."""
    if is_transient(exc):
        log.warning("%s failed on the infrastructure (%s: %s); it will be read again",
                    what, type(exc).__name__, exc)
        await asyncio.sleep(INFRA_RETRY_SECONDS)
        raise exc
