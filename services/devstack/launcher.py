"""`autopost dev`: the local stack in one command, optionally with the demo."""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson

from .demo import render_table, run_demo, succeeded
from .stack import DevStack


async def run_dev(*, demo: int | None, as_json: bool, keep_running: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("[dev] starting broker, Postgres, sandboxes and services…", file=sys.stderr, flush=True)
    async with DevStack() as stack:
        print(f"[dev] ready: kafka {stack.bootstrap}, sandbox {stack.sandbox_url}, "
              f"database {stack.database_name} ({stack.database.source})", file=sys.stderr, flush=True)
        code = 0
        if demo:
            demo_task = asyncio.create_task(run_demo(stack, demo))
            await asyncio.wait([demo_task, asyncio.create_task(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if not demo_task.done():
                demo_task.cancel()
                return 130
            results = demo_task.result()
            ok = succeeded(results, demo)
            if as_json:
                print(orjson.dumps({"targets": [t.to_json() for t in results]},
                                   option=orjson.OPT_INDENT_2).decode())
            else:
                print(render_table(results))
                print(f"\n{'every target published' if ok else 'NOT every target was published'}")
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
