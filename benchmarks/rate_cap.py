"""Rate-cap efficiency: a backlog for one account, published as fast as its cap allows.

    python benchmarks/rate_cap.py [--posts 40] [--platform tiktok] [--calls 6 --period 3]

One account gets `--posts` posts, all for now (`at`: a time asked for is kept, where `asap` would
take the planner's spacing between one account's posts, hours apart). The publisher's per-account cap is set to
`calls` per `period` seconds (the platforms' real figures are minutes long; the mechanism is the
same), through the planner, queue, publisher and poller, against the sandbox. From the
sandbox's own log of the rate-limited call (TikTok's publish init, Instagram's media_publish,
YouTube's upload session): the share of the allowed rate actually used between the first and
last call, and the violations (a call that makes more than `calls` in any `period` window).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _measure import content_events, produce_all, wait_rows  # noqa: E402
from contracts import Topics  # noqa: E402
from services.devstack.stack import DevStack, StackOptions  # noqa: E402

LIMITED_CALL = {"tiktok": "/init/", "instagram": "/media_publish", "youtube": "/upload/youtube/v3/videos"}


def violations(times: list[float], calls: int, period: float) -> int:
    """Calls that are the (calls+1)-th within any window of `period` seconds ending at them."""
    count = 0
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[: i + 1] if u > t - period)
        if in_window > calls:
            count += 1
    return count


async def run(posts: int, platform: str, calls: int, period: float) -> dict:
    options = StackOptions(
        services=("planner", "queue", f"publisher-{platform}", "poller"), processing_seconds=0.0,
        log_level="ERROR",
        # the run's own cap is the one measured against: the sandbox's minute limits would refuse
        # it, and the daily ones (TikTok's 15 posts per creator) would defer most of the backlog
        sandbox_args=("--no-rate-limits", "--no-daily-quotas"),
        env={f"AUTOPOST_PUBLISH_RATE_{platform.upper()}": f"{calls}/{period}",
             **{name: str(100 * posts) for name in ("AUTOPOST_TIKTOK_DAILY_POSTS", "AUTOPOST_INSTAGRAM_DAILY_PUBLISHES",
                                                    "AUTOPOST_YOUTUBE_DAILY_UPLOADS", "AUTOPOST_YOUTUBE_DAILY_UNITS")},
             "AUTOPOST_STATUS_FIRST_CHECK_SECONDS": "0.2", "AUTOPOST_STATUS_MAX_INTERVAL_SECONDS": "1"})
    account = f"backlog-{platform}"
    async with DevStack(options, output=open("/dev/null", "w")) as stack:
        await stack.connect_accounts([(platform, account)])
        conn = await asyncpg.connect(stack.database_url)
        events = content_events(posts, [platform], f"{stack.sandbox_url}/media/r.mp4?bytes=4096", account=account,
                                at=datetime.now(timezone.utc))
        await produce_all(stack.bootstrap, Topics.CONTENT_SUBMITTED, events)
        expected_seconds = posts * period / calls
        await wait_rows(conn, posts, expected_seconds * 3 + 60,
                        "SELECT count(*) FROM targets WHERE status IN ('posted', 'failed')")
        failed = await conn.fetchval("SELECT count(*) FROM targets WHERE status = 'failed'")
        await conn.close()
        async with httpx.AsyncClient(timeout=60) as http:
            log = (await http.get(f"{stack.sandbox_url}/_sandbox/calls",
                                  params={"platform": platform, "accountId": account})).json()
            published = (await http.get(f"{stack.sandbox_url}/_sandbox/published",
                                        params={"accountId": account})).json()
    times = sorted(c["at"] for c in log if LIMITED_CALL[platform] in c["path"])
    if len(times) < len(published):  # a figure from a log that missed calls would be wrong
        raise SystemExit(f"the sandbox logged {len(times)} limited calls for {len(published)} posts")
    allowed = calls / period
    used = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    gaps = [b - a for a, b in zip(times, times[1:])]
    return {
        "benchmark": "rate_cap",
        "platform": platform,
        "posts": posts,
        "cap": f"{calls} per {period} s per account",
        "limited_calls_seen_by_sandbox": len(times),
        "published": len(published),
        "failed": failed,
        "allowed_per_second": round(allowed, 3),
        "used_per_second": round(used, 3),
        "efficiency": round(used / allowed, 3),
        "violations": violations(times, calls, period),
        "gap_seconds": {"min": round(min(gaps), 3), "max": round(max(gaps), 3)} if gaps else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=40)
    parser.add_argument("--platform", default="tiktok", choices=sorted(LIMITED_CALL))
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--period", type=float, default=3.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.posts, args.platform, args.calls, args.period))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
