"""End-to-end throughput and dispatch lateness through every service, as child processes.

    python benchmarks/pipeline.py --posts 5000 [--platforms tiktok,instagram,youtube] [--mode asap|at]

Each post goes to one account per platform (its own, so per-account rate caps do not throttle the
run), through the real broker (Tansu), Postgres, the planner, the queue, the publishers and the
poller, to the sandboxes with zero processing latency. Prints one JSON object:
posts per second end to end, and lateness = the sandbox's publish time minus the target's
scheduled time (p50/p99/max, seconds). `--mode at` schedules every post at one instant a few
seconds after submission ends, to see how a burst of due targets is dispatched.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts import Platform, Topics  # noqa: E402
from services.devstack.stack import DevStack, StackOptions  # noqa: E402


def make_events(posts: int, platforms: list[str], media_url: str, at: datetime | None) -> list[bytes]:
    schedule = {"mode": "at", "scheduledTime": at.isoformat()} if at else {"mode": "asap"}
    return [
        orjson.dumps({
            "upstreamId": f"bench-{i}",
            "targets": [{"platform": p, "accountId": f"b{i}-{p}"} for p in platforms],
            "media": [{"url": media_url, "mimeType": "video/mp4"}],
            "caption": f"bench {i}",
            "contentType": "video",
            "schedule": schedule,
        })
        for i in range(posts)
    ]


async def submit(bootstrap: str, events: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(Topics.CONTENT_SUBMITTED, e, key=str(i).encode())
                   for i, e in enumerate(events)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM targets GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(posts: int, platforms: list[str], mode: str, timeout: float) -> dict:
    targets = posts * len(platforms)
    # one account per post, but YouTube's daily quota is per project: a load test turns it off
    options = StackOptions(processing_seconds=0.0, log_level="ERROR", sandbox_args=("--no-daily-quotas",),
                           env={"AUTOPOST_STATUS_FIRST_CHECK_SECONDS": "0.2",
                                "AUTOPOST_STATUS_MAX_INTERVAL_SECONDS": "1"})
    async with DevStack(options, output=open("/dev/null", "w")) as stack:
        conn = await asyncpg.connect(stack.database_url)
        media = f"{stack.sandbox_url}/media/bench.mp4?bytes=4096"
        at = datetime.now(timezone.utc) + timedelta(seconds=10 + posts / 1000) if mode == "at" else None
        events = make_events(posts, platforms, media, at)

        started = time.monotonic()
        await submit(stack.bootstrap, events)
        submitted = time.monotonic()
        stored_at = None
        while True:
            current = await counts(conn)
            if stored_at is None and sum(current.values()) >= targets:
                stored_at = time.monotonic()
            if current.get("posted", 0) + current.get("failed", 0) >= targets:
                break
            if time.monotonic() - started > timeout:
                raise SystemExit(f"timed out: {current}")
            await asyncio.sleep(0.2)
        finished = time.monotonic()
        final = await counts(conn)
        scheduled = {r["account_id"]: r["scheduled_time"] for r in await conn.fetch(
            "SELECT account_id, scheduled_time FROM targets")}
        await conn.close()
        async with httpx.AsyncClient(timeout=60) as http:
            published = (await http.get(f"{stack.sandbox_url}/_sandbox/published")).json()

    lateness = [
        (datetime.fromisoformat(p["publishedAt"]) - scheduled[p["accountId"]]).total_seconds()
        for p in published if p["accountId"] in scheduled
    ]
    return {
        "benchmark": "pipeline",
        "mode": mode,
        "posts": posts,
        "targets": targets,
        "platforms": platforms,
        "posted": final.get("posted", 0),
        "failed": final.get("failed", 0),
        "published_at_sandbox": len(published),
        "seconds_total": round(finished - started, 2),
        "seconds_submit": round(submitted - started, 2),
        "seconds_until_all_stored": round((stored_at or finished) - started, 2),
        "posts_per_second_end_to_end": round(posts / (finished - started), 1),
        "targets_per_second_end_to_end": round(targets / (finished - started), 1),
        "lateness_seconds": {
            "p50": round(percentile(lateness, 0.50), 3),
            "p99": round(percentile(lateness, 0.99), 3),
            "max": round(max(lateness), 3),
            "mean": round(statistics.fmean(lateness), 3),
        } if lateness else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--platforms", default=",".join(p.value for p in Platform))
    parser.add_argument("--mode", choices=("asap", "at"), default="asap")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    result = asyncio.run(run(args.posts, args.platforms.split(","), args.mode, args.timeout))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
