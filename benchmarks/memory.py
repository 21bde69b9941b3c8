"""Resident memory per service, and of the whole `autopost dev` stack, with 100,000 targets queued.

    python benchmarks/memory.py [--targets 100000]

Every service, the sandbox and the broker run as `autopost dev` runs them: the services and the
sandbox forked from `preload`, the process that imported their code once. Posts for three
platforms are submitted for tomorrow, so every target is planned, stored and waiting. Memory is
read per process (with its children) when the stack is idle, and again once every target is
stored. Postgres is not counted: `autopost dev` uses a server already running when there is one.

Two figures per process: RSS, what the service would hold alone (it counts the pages it shares
with the others), the per-service figure; and PSS, its share of the pages it shares. The whole
stack's memory is the sum of PSS; the sum of RSS is given too, and counts each shared page once
per process. `--no-preload` starts every process on its own, as before there was a fork server.
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

from _measure import content_events, produce_all, rss_and_pss_mb, stack_pids, wait_rows  # noqa: E402
from contracts import Platform, Topics  # noqa: E402
from services.devstack.stack import DevStack, StackOptions  # noqa: E402

PLATFORMS = [p.value for p in Platform]


def _memory(pids: dict[str, int]) -> dict[str, dict[str, float]]:
    apart = list(pids.values())
    both = {name: rss_and_pss_mb(pid, apart) for name, pid in pids.items()}
    return {"rss_mb": {name: rss for name, (rss, _) in both.items()},
            "pss_mb": {name: pss for name, (_, pss) in both.items()}}


async def run(targets: int, timeout: float, preload: bool) -> dict:
    posts = -(-targets // len(PLATFORMS))
    options = StackOptions(log_level="ERROR", preload=preload)
    async with DevStack(options, output=open("/dev/null", "w")) as stack:
        pids = stack_pids(stack)
        await asyncio.sleep(3)
        idle = _memory(pids)
        conn = await asyncpg.connect(stack.database_url)
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
        events = content_events(posts, PLATFORMS, f"{stack.sandbox_url}/media/m.mp4", at=tomorrow, spread_seconds=3600)
        started = time.monotonic()
        await produce_all(stack.bootstrap, Topics.CONTENT_SUBMITTED, events)
        await wait_rows(conn, posts * len(PLATFORMS), timeout)
        stored = time.monotonic() - started
        await asyncio.sleep(5)  # the lag monitors and queue stats have run with the full set
        queued = _memory(pids)
        await conn.close()
    rss = queued["rss_mb"]
    services = [n for n in rss if n not in ("sandbox", "tansu", "preload")]
    return {
        "benchmark": "memory",
        "preload": preload,
        "targets_queued": posts * len(PLATFORMS),
        "seconds_to_store_all": round(stored, 1),
        "idle": idle,
        "with_all_queued": queued,
        "largest_service": max(services, key=lambda n: rss[n]),
        "largest_service_rss_mb": max(rss[n] for n in services),
        "whole_dev_stack_pss_mb": round(sum(queued["pss_mb"].values()), 1),
        "whole_dev_stack_rss_sum_mb": round(sum(rss.values()), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--no-preload", dest="preload", action="store_false",
                        help="start each process on its own instead of forking from `preload`")
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args.targets, args.timeout, args.preload)), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
