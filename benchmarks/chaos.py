"""Nothing lost, nothing posted twice: the whole local stack under crashes and outages.

    python benchmarks/chaos.py --posts 10000 --json [--chaos-seconds 120] [--seed 7]

Loopback only, bounded in time. Submits N posts for three platforms with sandbox faults on,
SIGKILLs a random service every few seconds and starts it again, pauses the broker once, loses
a topic once (deleted and recreated), cuts Postgres once; then waits for the drain and checks
against the sandboxes' own records. Prints {"posts", "targets", "lost", "duplicates", "needs_review",
"stuck", "drain_seconds", ...}; exits 1 unless lost, duplicates and stuck are all 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.devstack.chaos import ChaosPlan, run_chaos  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--chaos-seconds", type=float, default=None,
                        help="how long the faults last (default: 40 s, plus 1 s per 100 posts)")
    parser.add_argument("--kill-every", type=float, default=4.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log", default=None, metavar="FILE", help="the services' output (errors)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result on stdout")
    args = parser.parse_args()
    plan = ChaosPlan(posts=args.posts, chaos_seconds=args.chaos_seconds or 40 + args.posts / 100,
                     kill_every_seconds=args.kill_every, drain_timeout_seconds=args.drain_timeout, seed=args.seed,
                     services_log=args.log)
    result = asyncio.run(run_chaos(plan, output=sys.stderr))
    if args.json:
        result = {k: v for k, v in result.items() if k != "events"}
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0 if result["lost"] == result["duplicates"] == result["stuck"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
