"""Send content events from JSON files, as an upstream system would."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from contracts import Topics

from .runtime import Settings


def events_in(path: Path) -> list[bytes]:
    data = orjson.loads(path.read_bytes())
    items = data if isinstance(data, list) else [data]
    return [orjson.dumps(item) for item in items]


async def submit_files(settings: Settings, paths: list[Path]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all",
                                enable_idempotence=settings.kafka.enable_idempotence)
    await producer.start()
    try:
        topic = settings.topic(Topics.CONTENT_SUBMITTED)
        count = 0
        for path in paths:
            for payload in events_in(path):
                key = orjson.loads(payload).get("upstreamId") if payload.startswith(b"{") else None
                await producer.send_and_wait(topic, payload, key=str(key).encode() if key else None)
                count += 1
        print(f"submitted {count} event(s) to {topic}")
    finally:
        await producer.stop()
    return 0
