"""`autopost dev`: the local stack in one command, optionally with the demo."""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson

from .demo import render_table, run_demo, succeeded
from .stack import DevStack, StackOptions


async def run_dev(*, demo: int | None, as_json: bool, keep_running: bool, faults: str | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("[dev] starting broker, Postgres, sandboxes and services…"
          + (f" (sandbox faults: {faults})" if faults else ""), file=sys.stderr, flush=True)
    async with DevStack(StackOptions(faults=faults)) as stack:
        print(f"[dev] ready: kafka {stack.bootstrap}, sandbox {stack.sandbox_url}, "
              f"database {stack.database_name} ({stack.database.source})", file=sys.stderr, flush=True)
        code = 0
        if demo:
            demo_task = asyncio.create_task(run_demo(stack, demo, timeout=240.0 if faults else 120.0))
            await asyncio.wait([demo_task, asyncio.create_task(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if not demo_task.done():
                demo_task.cancel()
                return 130
            results = demo_task.result()
            stats = await stack.sandbox_stats()  # the platforms' own count, not ours
            duplicates = stats["duplicates"]
            ok = succeeded(results, demo) and duplicates == 0
            if as_json:
                print(orjson.dumps({"targets": [t.to_json() for t in results], "duplicates": duplicates,
                                    "published": sum(stats[p]["published"] for p in ("tiktok", "instagram", "youtube")),
                                    "faultsInjected": stats["faultsInjected"]},
                                   option=orjson.OPT_INDENT_2).decode())
            else:
                print(render_table(results))
                injected = ", ".join(f"{n} {k}" for k, n in sorted(stats["faultsInjected"].items()))
                print(f"\nduplicates on the platforms: {duplicates}"
                      + (f"; faults injected: {injected}" if injected else ""))
                print(f"{'every target published' if ok else 'NOT every target was published once'}")
            code = 0 if ok else 1
        if keep_running or not demo:
            print("[dev] running; Ctrl-C to stop", file=sys.stderr, flush=True)
            unexpected = asyncio.create_task(stack.group.wait_unexpected_exit())
            await asyncio.wait([unexpected, asyncio.create_task(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if unexpected.done():
                print(f"[dev] {unexpected.result().describe()}; stopping", file=sys.stderr)
                code = 1
        print("[dev] stopping…", file=sys.stderr, flush=True)
    return code
