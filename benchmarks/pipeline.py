"""End-to-end throughput and dispatch lateness through every service, as child processes.

    python benchmarks/pipeline.py --posts 5000 [--platforms tiktok,instagram,youtube] [--mode asap|at]
                                  [--no-ceiling] [--profile DIR] [--log FILE]

Each post goes to one account per platform (its own, so per-account rate caps do not throttle the
run), through the real broker (Tansu), Postgres, the planner, the queue, the publishers and the
poller, to the sandboxes with zero processing latency. Prints one JSON object:
posts per second end to end, and lateness = the sandbox's publish time minus the target's
scheduled time (p50/p99/max, seconds). `--mode at` schedules every post at one instant a few
seconds after submission ends, to see how a burst of due targets is dispatched.

In the same run, on the same broker and before the pipeline's phase (fresh topics each): the
raw aiokafka ceiling, as many messages as the pipeline's topics carried, of a content event's
size, produced pipelined and consumed in batches with one commit each; the ratio compares the
two as messages per second. Also: CPU per process over the pipeline's phase (1.0 = one core
busy), and with `--profile DIR` a py-spy sampling profile of each process (inclusive share of
samples per function) written to DIR and summarised in the JSON.
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

from _measure import CpuWindow, Profiles, cores, kafka_ceiling, stack_pids  # noqa: E402
from contracts import Platform, Topics  # noqa: E402
from services.devstack.stack import DevStack, StackOptions  # noqa: E402
from services.runtime import LagProbe  # noqa: E402


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


async def messages_carried(bootstrap: str) -> dict[str, int]:
    """Records on each of the pipeline's topics (fetch high watermarks: right on the local broker)."""
    probe = LagProbe(bootstrap)
    await probe.start()
    try:
        partitions = await probe.partitions(Topics.all())
        marks = await probe.high_watermarks(partitions)
    finally:
        await probe.stop()
    carried: dict[str, int] = {}
    for tp, mark in marks.items():
        carried[tp.topic] = carried.get(tp.topic, 0) + mark
    return {t: n for t, n in carried.items() if n}


async def run(posts: int, platforms: list[str], mode: str, timeout: float, ceiling: bool = True,
              profile: Path | None = None, log: Path | None = None) -> dict:
    targets = posts * len(platforms)
    # one account per post, but YouTube's daily quota is per project: the ledger's and the
    # sandbox's caps are raised or off, so the run measures throughput, not 100 uploads a day
    options = StackOptions(processing_seconds=0.0, log_level="ERROR", sandbox_args=("--no-daily-quotas",),
                           env={"AUTOPOST_STATUS_FIRST_CHECK_SECONDS": "0.2",
                                "AUTOPOST_STATUS_MAX_INTERVAL_SECONDS": "1",
                                "AUTOPOST_YOUTUBE_DAILY_UPLOADS": str(10 * targets),
                                "AUTOPOST_YOUTUBE_DAILY_UNITS": str(1000 * targets)})
    async with DevStack(options, output=open(log or "/dev/null", "w")) as stack:
        conn = await asyncpg.connect(stack.database_url)
        media = f"{stack.sandbox_url}/media/bench.mp4?bytes=4096"
        connect_started = time.monotonic()
        await stack.connect_accounts([(p, f"b{i}-{p}") for i in range(posts) for p in platforms])
        connect_seconds = time.monotonic() - connect_started
        at = datetime.now(timezone.utc) + timedelta(seconds=10 + posts / 1000) if mode == "at" else None
        events = make_events(posts, platforms, media, at)
        # the ceiling first, on its own fresh topic (deleted after), sized like this run's traffic
        raw = await kafka_ceiling(stack.bootstrap, messages=posts * 12, size=len(events[0])) if ceiling else None

        pids = stack_pids(stack)
        cpu = CpuWindow(pids)
        profiles = Profiles(pids, profile) if profile else None
        cpu.start()
        if profiles:
            profiles.start()
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
        busy = cpu.stop()
        hot = profiles.stop() if profiles else None
        carried = await messages_carried(stack.bootstrap)
        final = await counts(conn)
        # retries cost a whole publish each: why targets went round again
        retried = [{"outcome": r["outcome"], "code": r["error_code"], "n": r["n"]} for r in await conn.fetch(
            "SELECT outcome, error_code, count(*) AS n FROM attempts WHERE outcome <> 'posted'"
            " GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10")]
        scheduled = {r["account_id"]: r["scheduled_time"] for r in await conn.fetch(
            "SELECT account_id, scheduled_time FROM targets")}
        await conn.close()
        async with httpx.AsyncClient(timeout=60) as http:
            published = (await http.get(f"{stack.sandbox_url}/_sandbox/published")).json()

    lateness = [
        (datetime.fromisoformat(p["publishedAt"]) - scheduled[p["accountId"]]).total_seconds()
        for p in published if p["accountId"] in scheduled
    ]
    messages = sum(carried.values())
    e2e_messages_per_second = messages / (finished - started)
    ours = {n: c for n, c in busy.items() if n != "machine"}
    cpu_per_post = {n: c * (finished - started) / posts for n, c in ours.items()}  # seconds
    return {
        "benchmark": "pipeline",
        "mode": mode,
        "posts": posts,
        "targets": targets,
        "platforms": platforms,
        "posted": final.get("posted", 0),
        "failed": final.get("failed", 0),
        "published_at_sandbox": len(published),
        "seconds_connecting_accounts": round(connect_seconds, 2),  # before the clock starts
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
        "attempts_not_posted": retried,
        "kafka_messages": {"total": messages, "per_post": round(messages / posts, 1), "by_topic": carried},
        "kafka_messages_per_second_end_to_end": round(e2e_messages_per_second),
        "raw_kafka_ceiling": raw,
        "ratio_to_ceiling": round(e2e_messages_per_second / raw["produce_to_consume_per_second"], 3) if raw else None,
        "cores_busy_by_process": ours,
        "cores_busy_on_the_machine": busy["machine"],  # everything, ours or not
        "cores": cores(),
        # CPU per post by process: less sensitive than posts/s to other work on the machine
        "cpu_ms_per_post_by_process": {n: round(c * 1000, 2) for n, c in cpu_per_post.items()},
        "cpu_ms_per_post": round(sum(cpu_per_post.values()) * 1000, 1),
        "ceilings_posts_per_second": ceilings(cpu_per_post, messages / posts, raw),
        "profile_top_functions": hot,
    }


def ceilings(cpu_per_post: dict[str, float], messages_per_post: float, raw: dict | None) -> dict[str, float]:
    """What bounds posts/s on this machine, from this run's own costs: all its cores given to
    the CPU a post took here (every process, Postgres included), or to the sandboxes' share
    alone (the platforms' side, which production does not pay); and the broker's raw rate
    divided by the messages a post needs."""
    bounds = {"all_cores_at_this_cpu_per_post": cores() / sum(cpu_per_post.values()),
              "all_cores_for_the_sandboxes_alone": cores() / cpu_per_post["sandbox"]}
    if raw:
        bounds["broker_raw_rate_over_messages_per_post"] = raw["produce_to_consume_per_second"] / messages_per_post
    return {name: round(value, 1) for name, value in bounds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--platforms", default=",".join(p.value for p in Platform))
    parser.add_argument("--mode", choices=("asap", "at"), default="asap")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--no-ceiling", action="store_true", help="skip the raw Kafka ceiling phase")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR", help="py-spy every process into DIR")
    parser.add_argument("--log", type=Path, default=None, metavar="FILE", help="the services' output (errors)")
    args = parser.parse_args()
    result = asyncio.run(run(args.posts, args.platforms.split(","), args.mode, args.timeout,
                             ceiling=not args.no_ceiling, profile=args.profile, log=args.log))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
