"""Topic administration for the local stack: explicit partitions, idempotent, one admin call each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

_TOPIC_ALREADY_EXISTS = 36
_UNKNOWN_TOPIC_OR_PARTITION = 3


@asynccontextmanager
async def admin_client(bootstrap: str, *, request_timeout_ms: int = 10_000) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
    try:
        await admin.start()  # start() already makes a metadata request
        yield admin
    finally:
        await admin.close()


async def probe_broker(bootstrap: str, *, timeout: float = 2.0) -> None:
    """One real Kafka metadata request; raises if the broker does not answer within `timeout`."""
    async with asyncio.timeout(timeout):
        async with admin_client(bootstrap, request_timeout_ms=max(int(timeout * 1000), 100)) as admin:
            await admin.list_topics()


async def wait_for_broker(bootstrap: str, timeout: float = 10.0) -> None:
    """Retry `probe_broker` until it answers; TimeoutError naming the address otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            await probe_broker(bootstrap, timeout=max(min(remaining, 2.0), 0.1))
            return
        except Exception as exc:
            if time.monotonic() + 0.05 >= deadline:
                raise TimeoutError(f"no Kafka broker answered at {bootstrap} within {timeout:.1f}s: {exc!r}") from exc
        await asyncio.sleep(0.05)


async def list_topics(bootstrap: str) -> list[str]:
    async with admin_client(bootstrap) as admin:
        return await admin.list_topics()


async def partition_counts(bootstrap: str, names: Iterable[str]) -> dict[str, int]:
    """Partitions per existing topic; topics that do not exist are left out."""
    async with admin_client(bootstrap) as admin:
        # describing a missing topic would auto-create it (aiokafka's metadata request allows it)
        existing = set(await admin.list_topics())
        wanted = [n for n in dict.fromkeys(names) if n in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int = 6) -> list[str]:
    """Create the missing topics with `partitions` partitions in one admin call; return the ones that were missing.

    Existing topics are left as they are (their partition count is not checked or changed).
    Explicit creation matters: FastStream would declare 1 partition, broker auto-create 4.
    """
    wanted = list(dict.fromkeys(names))
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(name=n, num_partitions=partitions, replication_factor=1) for n in missing]
        )
    # a concurrent creator may have won the race: that is still success
    _raise_on_errors("create", response.topic_errors, ignore={_TOPIC_ALREADY_EXISTS})
    return missing


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Delete the topics that exist (on Tansu, deleting is the only way to free their memory)."""
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        doomed = [n for n in dict.fromkeys(names) if n in existing]
        if not doomed:
            return
        response = await admin.delete_topics(doomed)
    _raise_on_errors("delete", response.topic_error_codes, ignore={_UNKNOWN_TOPIC_OR_PARTITION})


def _raise_on_errors(action: str, topic_errors: list[tuple], *, ignore: set[int]) -> None:
    failed = {item[0]: item[1] for item in topic_errors if item[1] != 0 and item[1] not in ignore}
    if failed:
        detail = ", ".join(f"{topic}: {for_code(code).__name__}" for topic, code in failed.items())
        raise RuntimeError(f"could not {action} topics: {detail}")
