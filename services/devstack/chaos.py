"""The chaos run: the whole local stack under crashes, an unreachable broker, lost messages, an
unavailable database and flaky platforms; then the outcome, checked against the sandboxes' own
record of what they published.

- every few seconds a random service process is SIGKILLed and started again;
- once, the broker is paused (SIGSTOP) for a while, then resumed;
- once, a topic the services use is deleted and recreated, as a broker that lost data would;
- once, every connection to Postgres is cut and new ones refused for a while;
- all along, the sandboxes fail about one request in five, transiently.

Then the faults stop and the run waits for the drain: every target posted (or failed for
good). `lost` counts targets no platform published and nobody was told of, `duplicates` the
extra publications, `stuck` the targets still not finished when the drain timed out. A TikTok
init whose answer was lost cannot be looked up (platforms.md 1.9): its target fails as
`needs_review`, with an alert, rather than risk a second post. Those are counted apart
(`needs_review`, and how many of them the platform does not have), not as lost.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

from contracts import Platform, Topics

from .stack import DevStack, StackOptions
from .topics import create_missing_topics, delete_topics

# Services a crash may hit: each keeps its state in Postgres or is stateless.
KILLABLE = ("planner", "queue", "publisher-tiktok", "publisher-instagram", "publisher-youtube", "poller",
            "notifier")
# Topics whose loss the record in Postgres repairs (planned posts are sent again until the queue
# has them; leases and status checks are asked again). content.submitted is the upstream's log:
# what is lost there before the planner read it, only the upstream can send again.
LOSABLE_TOPICS = (
    Topics.POST_PLANNED,
    *(Topics.publish_requested(p) for p in Platform),
    *(Topics.status_requested(p) for p in Platform),
    Topics.PUBLISH_RESULT,
    Topics.STATUS_OBSERVED,
)
FINISHED = ("posted", "failed", "cancelled")

# Short leases and check deadlines, so lost messages are asked again within the run; budgets
# wide enough that a target survives several crashes of its publisher in a row.
CHAOS_ENV = {
    "AUTOPOST_LEASE_SECONDS": "20",
    "AUTOPOST_STATUS_LEASE_SECONDS": "10",
    "AUTOPOST_STATUS_FIRST_CHECK_SECONDS": "0.5",
    "AUTOPOST_STATUS_MAX_INTERVAL_SECONDS": "2",
    "AUTOPOST_PLANNER_RESEND_AFTER_SECONDS": "5",
    "AUTOPOST_PLANNER_RECOVERY_INTERVAL_SECONDS": "1",
    "AUTOPOST_RETRY_MAX_ATTEMPTS": "20",
    "AUTOPOST_RETRY_BUDGET_SECONDS": "7200",
    # one account per post, but YouTube's daily uploads are per project: the run is not about quotas
    "AUTOPOST_YOUTUBE_DAILY_UPLOADS": "100000000",
    "AUTOPOST_YOUTUBE_DAILY_UNITS": "100000000",
}


@dataclass
class ChaosPlan:
    posts: int = 100
    platforms: tuple[Platform, ...] = tuple(Platform)
    chaos_seconds: float = 40.0  # how long the faults last
    kill_every_seconds: float = 4.0
    restart_after_seconds: float = 1.0
    broker_pause_seconds: float = 3.0
    database_outage_seconds: float = 4.0
    sandbox_faults: str = "flaky"
    drain_timeout_seconds: float = 600.0
    processing_seconds: float = 0.2
    seed: int = 7
    env: dict[str, str] = field(default_factory=dict)
    services_log: str | None = None  # where the services' output goes (default: nowhere)


@dataclass
class ChaosLog:
    kills: Counter[str] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)

    def note(self, started: float, text: str, output: TextIO | None) -> None:
        line = f"[chaos +{time.monotonic() - started:6.1f}s] {text}"
        self.events.append(line)
        if output is not None:
            print(line, file=output, flush=True)


async def run_chaos(plan: ChaosPlan, *, output: TextIO | None = sys.stderr) -> dict[str, Any]:
    rng = random.Random(plan.seed)
    options = StackOptions(processing_seconds=plan.processing_seconds, database_outages=True,
                           log_level="ERROR", env={**CHAOS_ENV, **plan.env},
                           sandbox_args=("--no-daily-quotas",))
    log = ChaosLog()
    async with DevStack(options, output=open(plan.services_log or "/dev/null", "w")) as stack:
        # accounts first (a few minutes for 10,000 posts): the run's clock starts at the submit
        accounts = chaos_events(plan, stack.sandbox_url, datetime.now(timezone.utc))
        await stack.connect_accounts([(t["platform"], t["accountId"]) for e in accounts for t in e["targets"]])
        await set_sandbox_faults(stack.sandbox_url, plan.sandbox_faults)
        started = time.monotonic()
        events = chaos_events(plan, stack.sandbox_url, datetime.now(timezone.utc))
        await submit(stack.bootstrap, events)
        log.note(started, f"submitted {len(events)} posts x {len(plan.platforms)} platforms", output)
        await _inflict(stack, plan, rng, log, started, output)
        await set_sandbox_faults(stack.sandbox_url, "none")
        faults_ended = time.monotonic()
        log.note(started, "faults stopped; waiting for the drain", output)
        expected = len(events) * len(plan.platforms)
        statuses = await _drain(stack.database_url, expected, plan.drain_timeout_seconds)
        drain_seconds = time.monotonic() - faults_ended
        unfinished = await _why_not_posted(stack.database_url)
        review = await _needing_review(stack.database_url)
        published = await _published(stack.sandbox_url)
    return {**_outcome(plan, events, statuses, published, review, drain_seconds, log), "not_posted": unfinished}


def chaos_events(plan: ChaosPlan, sandbox_url: str, start: datetime) -> list[dict[str, Any]]:
    """Posts due across the chaos window, each on its own accounts (rate caps stay out of it)."""
    window = max(plan.chaos_seconds * 0.8, 1.0)
    return [
        {
            "upstreamId": f"chaos-{plan.seed}-{i}",
            "targets": [{"platform": p.value, "accountId": f"chaos{i}-{p.value}"} for p in plan.platforms],
            "media": [{"url": f"{sandbox_url}/media/chaos-{i}.mp4?bytes=300000", "mimeType": "video/mp4"}],
            "caption": f"chaos post {i}",
            "contentType": "video",
            "schedule": {"mode": "at", "scheduledTime":
                         (start + timedelta(seconds=2 + window * i / max(plan.posts, 1))).isoformat()},
        }
        for i in range(plan.posts)
    ]


async def submit(bootstrap: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        sent = [await producer.send(Topics.CONTENT_SUBMITTED, orjson.dumps(e), key=e["upstreamId"].encode())
                for e in events]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def set_sandbox_faults(sandbox_url: str, profile: str) -> None:
    """Replace the sandbox's fault rules with a profile's ("none" clears them)."""
    async with httpx.AsyncClient(timeout=10) as http:
        (await http.delete(f"{sandbox_url}/_sandbox/faults")).raise_for_status()
        if profile != "none":
            (await http.post(f"{sandbox_url}/_sandbox/faults", json={"profile": profile})).raise_for_status()


async def _inflict(stack: DevStack, plan: ChaosPlan, rng: random.Random, log: ChaosLog, started: float,
                   output: TextIO | None) -> None:
    """Kills all along; the broker pause, the lost topic and the database outage once each,
    at a quarter, half and three quarters of the way."""
    once = {0.25: _pause_broker, 0.5: _lose_topic, 0.75: _database_outage}
    restarts: set[asyncio.Task[Any]] = set()
    end = started + plan.chaos_seconds
    next_kill = started + plan.kill_every_seconds
    while (now := time.monotonic()) < end:
        progress = (now - started) / plan.chaos_seconds
        for at, fault in list(once.items()):
            if progress >= at:
                del once[at]
                await fault(stack, plan, rng, log, started, output)
        if now >= next_kill:
            name = rng.choice(KILLABLE)
            if stack.group.is_running(name):
                stack.group.kill(name)
                log.kills[name] += 1
                log.note(started, f"SIGKILL {name}", output)
                task = asyncio.create_task(_restart_later(stack, name, plan.restart_after_seconds))
                restarts.add(task)
                task.add_done_callback(restarts.discard)
            next_kill = now + plan.kill_every_seconds
        await asyncio.sleep(0.1)
    await asyncio.gather(*restarts)
    for name in KILLABLE:  # nothing stays down once the faults stop
        if not stack.group.is_running(name):
            await stack.group.restart(name)


async def _restart_later(stack: DevStack, name: str, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await stack.group.restart(name)


async def _pause_broker(stack, plan, rng, log, started, output) -> None:
    log.note(started, f"broker paused for {plan.broker_pause_seconds}s", output)
    stack.broker.pause()
    try:
        await asyncio.sleep(plan.broker_pause_seconds)
    finally:
        stack.broker.resume()
    log.note(started, "broker resumed", output)


async def _lose_topic(stack, plan, rng, log, started, output) -> None:
    topic = rng.choice(LOSABLE_TOPICS)
    await delete_topics(stack.bootstrap, [topic])
    await create_missing_topics(stack.bootstrap, [topic], stack.options.partitions)
    log.note(started, f"topic {topic} lost (deleted and recreated)", output)


async def _database_outage(stack, plan, rng, log, started, output) -> None:
    log.note(started, f"database unreachable for {plan.database_outage_seconds}s", output)
    stack.outage.cut()
    try:
        await asyncio.sleep(plan.database_outage_seconds)
    finally:
        stack.outage.restore()
    log.note(started, "database reachable again", output)


async def _drain(database_url: str, expected: int, timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM targets GROUP BY status")
            statuses = Counter({r["status"]: r["n"] for r in rows})
            finished = sum(statuses[s] for s in FINISHED)
            if (sum(statuses.values()) >= expected and finished == sum(statuses.values())) \
                    or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def _why_not_posted(database_url: str) -> dict[str, int]:
    """Targets not posted, by status and last error: what to look at when a run is not clean."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT status || ':' || coalesce(last_error->>'code', '-') AS why, count(*) AS n
               FROM targets WHERE status <> 'posted' GROUP BY 1 ORDER BY 2 DESC""")
    finally:
        await conn.close()
    return {r["why"]: r["n"] for r in rows}


async def _needing_review(database_url: str) -> set[tuple[str, str]]:
    """Targets failed for a person to check, as (platform, account id)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT platform, account_id FROM targets
               WHERE status = 'failed' AND last_error->>'code' = 'needs_review'""")
    finally:
        await conn.close()
    return {(r["platform"], r["account_id"]) for r in rows}


async def _published(sandbox_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.get(f"{sandbox_url}/_sandbox/published")
    response.raise_for_status()
    return response.json()


def _outcome(plan: ChaosPlan, events, statuses: Counter[str], published, review: set[tuple[str, str]],
             drain_seconds: float, log: ChaosLog) -> dict[str, Any]:
    expected = {(t["platform"], t["accountId"]) for e in events for t in e["targets"]}
    times = Counter((p["platform"], p["accountId"]) for p in published)
    stored = sum(statuses.values())
    return {
        "posts": len(events),
        "targets": len(expected),
        "lost": sum(1 for key in expected if times[key] == 0 and key not in review),
        "needs_review": len(review & expected),
        "needs_review_not_on_platform": sum(1 for key in review & expected if times[key] == 0),
        "duplicates": sum(n - 1 for key, n in times.items() if key in expected and n > 1),
        "stuck": (len(expected) - stored) + sum(n for s, n in statuses.items() if s not in FINISHED),
        "failed": statuses["failed"],
        "drain_seconds": round(drain_seconds, 1),
        "statuses": dict(statuses),
        "kills": dict(log.kills),
        "events": log.events,
    }
