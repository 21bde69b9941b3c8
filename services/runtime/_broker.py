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

from ._messaging import Record
from ._settings import KafkaSettings

log = logging.getLogger("autopost.consumer")

BatchHandler = Callable[[list[Record]], Awaitable[None]]

# A handler raises only when the batch must be re-read (database or broker unreachable):
# poison messages are dead-lettered inside it. Waiting before the re-read keeps an outage
# from turning into a hot loop.
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

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        records = [Record.of(raw) for raw in message.raw_message]
        try:
            await handler(records)
        except Exception:
            log.exception("batch of %d from %s failed; it will be read again", len(records), topics)
            await asyncio.sleep(INFRA_RETRY_SECONDS)
            raise
