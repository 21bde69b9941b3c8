"""Topic administration the local stack and tests need beyond what services do at start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from services.runtime._topics import admin_client, create_missing_topics, raise_on_topic_errors, topic_partitions

_UNKNOWN_TOPIC_OR_PARTITION = 3

__all__ = ["create_missing_topics", "delete_topics", "list_topics", "partition_counts", "wait_for_broker"]


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
    partitions = await topic_partitions(bootstrap)
    return {n: len(partitions[n]) for n in dict.fromkeys(names) if n in partitions}


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Delete the topics that exist (on Tansu, deleting is the only way to free their memory)."""
    async with admin_client(bootstrap) as admin:
        existing = set(await admin.list_topics())
        doomed = [n for n in dict.fromkeys(names) if n in existing]
        if not doomed:
            return
        response = await admin.delete_topics(doomed)
    raise_on_topic_errors("delete", response.topic_error_codes, ignore={_UNKNOWN_TOPIC_OR_PARTITION})
