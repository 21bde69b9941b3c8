"""Dispatch lateness when 100,000 targets fall due within one minute.

    python benchmarks/lateness.py [--targets 100000] [--spread 60]

The planner and the queue run (the services that decide when a target goes out); a consumer in
this process stands in for the publishers and notes when each publish request arrives. Posts
(three platforms each) are submitted for far in the future and stored; once all are, their slots
are moved to start ten seconds ahead, spread evenly over `--spread` seconds, and the dispatcher
is woken. Lateness = arrival of the publish request at its publisher's topic − the target's
scheduled time: the dispatcher's wait, the claim, the outbox relay and Kafka together. Also:
resident memory of the planner and the queue with every target queued.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _measure import content_events, produce_all, rss_mb, summary, wait_rows  # noqa: E402
from contracts import Platform, Topics  # noqa: E402
from services.devstack.stack import DevStack, StackOptions  # noqa: E402

PLATFORMS = [p.value for p in Platform]
LEAD_SECONDS = 10.0


async def collect(bootstrap: str, expected: int, deadline: float, late: dict[str, float]) -> None:
    """First arrival per target (a lease that runs out re-sends; nothing publishes here)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=2000)
    await consumer.start()
    try:
        topics = [Topics.publish_requested(p) for p in PLATFORMS]
        await consumer.topics()
        consumer.assign([TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()])
        await consumer.seek_to_beginning()
        while len(late) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            now = datetime.now(timezone.utc)
            for records in batches.values():
                for record in records:
                    request = orjson.loads(record.value)
                    if request["targetId"] not in late:
                        scheduled = datetime.fromisoformat(request["scheduledTime"])
                        late[request["targetId"]] = (now - scheduled).total_seconds()
    finally:
        await consumer.stop()


async def run(targets: int, spread: float, timeout: float) -> dict:
    posts = -(-targets // len(PLATFORMS))
    targets = posts * len(PLATFORMS)
    # no publisher answers here, so nothing leaves `publishing`: no cap on requests out
    options = StackOptions(services=("planner", "queue"), log_level="ERROR",
                           env={"AUTOPOST_DISPATCH_MAX_IN_FLIGHT": "0"})
    async with DevStack(options, output=open("/dev/null", "w")) as stack:
        conn = await asyncpg.connect(stack.database_url)
        far = datetime.now(timezone.utc) + timedelta(days=1)
        events = content_events(posts, PLATFORMS, "https://cdn.example.com/l.mp4", at=far, spread_seconds=spread)
        started = time.monotonic()
        await produce_all(stack.bootstrap, Topics.CONTENT_SUBMITTED, events)
        store_seconds = await wait_rows(conn, targets, timeout)
        memory = {name: rss_mb(stack.group.pid(name)) for name in options.services}

        # the whole set falls due from LEAD_SECONDS from now, over `spread` seconds
        start_at = datetime.now(timezone.utc) + timedelta(seconds=LEAD_SECONDS)
        shift = far - start_at
        await conn.execute("UPDATE targets SET scheduled_time = scheduled_time - $1::interval, due_at = due_at - $1::interval", shift)
        await conn.execute("NOTIFY autopost_targets_due")
        late: dict[str, float] = {}
        deadline = time.monotonic() + LEAD_SECONDS + spread + timeout
        await collect(stack.bootstrap, targets, deadline, late)
        await conn.close()
    return {
        "benchmark": "lateness",
        "targets": targets,
        "due_within_seconds": spread,
        "requests_received": len(late),
        "seconds_to_store_all": round(store_seconds, 1),
        "stored_targets_per_second": round(targets / store_seconds),
        "seconds_total": round(time.monotonic() - started, 1),
        "lateness_seconds": summary(list(late.values())),
        "early": sum(1 for x in late.values() if x < -0.05),
        "rss_mb_with_all_queued": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--spread", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args.targets, args.spread, args.timeout)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
