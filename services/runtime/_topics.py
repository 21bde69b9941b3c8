"""Services create their topics at start, with explicit partitions (never auto-created)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts import Topics

from ._settings import KafkaSettings

log = logging.getLogger("autopost.topics")


def service_topics(settings: KafkaSettings) -> list[str]:
    prefix = settings.topic_prefix
    return [f"{prefix}{name}" for name in Topics.all()]


async def ensure_topics(settings: KafkaSettings, names: list[str] | None = None) -> None:
    names = names or service_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [NewTopic(n, num_partitions=settings.partitions, replication_factor=1) for n in missing]
            )
        except TopicAlreadyExistsError:
            pass  # another replica created it first
        log.info("created topics %s", missing)
    finally:
        await admin.close()
