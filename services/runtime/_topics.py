"""Services create their topics at start, with explicit partitions (never auto-created).

FastStream would declare a topic with 1 partition and broker auto-creation gives 4; aiokafka's
metadata requests allow auto-creation, so topics must exist before any client touches them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from contracts import Topics

from ._settings import KafkaSettings

log = logging.getLogger("autopost.topics")

_TOPIC_ALREADY_EXISTS = 36


@asynccontextmanager
async def admin_client(bootstrap: str, *, request_timeout_ms: int = 10_000) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


def service_topics(settings: KafkaSettings) -> list[str]:
    return [settings.topic_prefix + name for name in Topics.all()]


async def create_missing_topics(bootstrap: str, names: Iterable[str], partitions: int = 6,
                                replication_factor: int = 1) -> list[str]:
    """Create the missing topics in one admin call; returns the ones that were missing.

    Existing topics are left as they are (their partition count is not changed). A topic made
    here with fewer replicas than production's cannot be given more without a reassignment:
    `replication_factor` must be the cluster's own.
    """
    wanted = list(dict.fromkeys(names))
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name=n, num_partitions=partitions, replication_factor=replication_factor) for n in missing]
        )
    # a concurrent creator (another replica) may have won the race: that is still success
    raise_on_topic_errors("create", response.topic_errors, ignore={_TOPIC_ALREADY_EXISTS})
    log.info("created topics %s", missing)
    return missing


async def ensure_topics(settings: KafkaSettings, names: Iterable[str] | None = None) -> list[str]:
    return await create_missing_topics(
        settings.bootstrap_servers, names or service_topics(settings), settings.partitions,
        settings.replication_factor,
    )


async def topic_partitions(bootstrap: str, *, request_timeout_ms: int = 10_000) -> dict[str, set[int]]:
    """Every topic the cluster has now, with its partitions, from one fresh metadata request.

    It asks for all topics: a request naming one would allow the broker to create it."""
    async with admin_client(bootstrap, request_timeout_ms=request_timeout_ms) as admin:
        described = await admin.describe_topics()
    return {t["topic"]: {p["partition"] for p in t["partitions"]} for t in described if t["error_code"] == 0}


def raise_on_topic_errors(action: str, topic_errors: list[tuple], *, ignore: set[int]) -> None:
    failed = {item[0]: item[1] for item in topic_errors if item[1] != 0 and item[1] not in ignore}
    if failed:
        detail = ", ".join(f"{topic}: {for_code(code).__name__}" for topic, code in failed.items())
        raise RuntimeError(f"could not {action} topics: {detail}")
