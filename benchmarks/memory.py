"""Resident memory per service, and of the whole `autopost dev` stack, with 100,000 targets queued.

    python benchmarks/memory.py [--targets 100000]

Every service, the sandbox and the broker run as `autopost dev` runs them; posts for three
platforms are submitted for tomorrow, so every target is planned, stored and waiting. RSS is
read per process (with its children) when the stack is idle, and again once every target is
stored. Postgres is not counted: `autopost dev` uses a server already running when there is one.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _measure import content_events, produce_all, rss_mb, stack_pids, wait_rows  # noqa: E402
from contracts import Platform, Topics  # noqa: E402
from services.devstack.stack import DevStack, StackOptions  # noqa: E402

PLATFORMS = [p.value for p in Platform]


async def run(targets: int, timeout: float) -> dict:
    posts = -(-targets // len(PLATFORMS))
    async with DevStack(StackOptions(log_level="ERROR"), output=open("/dev/null", "w")) as stack:
        pids = stack_pids(stack)
        await asyncio.sleep(3)
        idle = {name: rss_mb(pid) for name, pid in pids.items()}
        conn = await asyncpg.connect(stack.database_url)
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
        events = content_events(posts, PLATFORMS, f"{stack.sandbox_url}/media/m.mp4", at=tomorrow, spread_seconds=3600)
        started = time.monotonic()
        await produce_all(stack.bootstrap, Topics.CONTENT_SUBMITTED, events)
        await wait_rows(conn, posts * len(PLATFORMS), timeout)
        stored = time.monotonic() - started
        await asyncio.sleep(5)  # the lag monitors and queue stats have run with the full set
        queued = {name: rss_mb(pid) for name, pid in pids.items()}
        await conn.close()
    services = [n for n in queued if n not in ("sandbox", "tansu")]
    return {
        "benchmark": "memory",
        "targets_queued": posts * len(PLATFORMS),
        "seconds_to_store_all": round(stored, 1),
        "rss_mb_idle": idle,
        "rss_mb_with_all_queued": queued,
        "largest_service": max(services, key=lambda n: queued[n]),
        "largest_service_mb": max(queued[n] for n in services),
        "whole_dev_stack_mb": round(sum(queued.values()), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args.targets, args.timeout)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
