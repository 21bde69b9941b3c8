"""How fast the planner plans: inputs of the original shape, a 7-day horizon, one core.

    python benchmarks/planner.py [--json] [--plans 20000] [--strategy learned|heuristic]

Each input (platform, audienceData, contentType, historicalPerformance) is different: a
random timezone among all of tzdata's, active hours, peak days and best times, so no cache
answers for another input. A first pass over other inputs loads the zones (a running planner
has them). `plansPerSecond` counts the whole path of `autopost plan` on one core (CPU time of
this process): JSON bytes in, validated, planned, slots out as JSON bytes, each input new;
`planOnlyPerSecond` the planning alone; `plansPerSecondWarm` the same inputs again (an
account planned again); `plansPerSecondWall` the first figure by the wall clock, which other
processes on the machine slow down.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import available_timezones

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts import WEEKDAYS, ContentType, Platform, ScheduleInput, decode  # noqa: E402
from services.planner.domain import (  # noqa: E402
    generate_optimal_schedule,
    learned_schedule,
)

NOW = datetime(2026, 3, 20, 9, 30, tzinfo=timezone.utc)


def make_inputs(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    inputs = []
    for _ in range(count):
        hours = sorted(rng.sample(range(24), rng.randint(2, 8)))
        inputs.append(orjson.dumps({
            "platform": rng.choice(list(Platform)).value,
            "contentType": rng.choice(list(ContentType)).value,
            "audienceData": {"timezone": rng.choice(zones), "activityHours": hours,
                             "peakDays": rng.sample(WEEKDAYS, rng.randint(0, 3))},
            "historicalPerformance": {"bestTimes": [
                {"hour": h, "engagementRate": round(rng.uniform(0.01, 0.12), 4)}
                for h in rng.sample(range(24), rng.randint(0, 5))]},
        }))
    return inputs


def plan_one(raw: bytes, strategy: str) -> bytes:
    schedule_input = decode(ScheduleInput, raw)
    if strategy == "heuristic":
        slots = generate_optimal_schedule(schedule_input, NOW, horizon_days=7)
    else:
        slots = learned_schedule(schedule_input, NOW, horizon_days=7)
    return orjson.dumps([slot.to_wire() for slot in slots])


def timed(fn, items) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to call `fn` on every item."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    for item in items:
        fn(item)
    return time.process_time() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=20_000)
    parser.add_argument("--strategy", choices=("learned", "heuristic"), default="learned")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    for raw in make_inputs(args.plans, args.seed + 100):  # loads the zones
        plan_one(raw, args.strategy)
    raws = make_inputs(args.plans, args.seed)
    cold, cold_wall = timed(lambda raw: plan_one(raw, args.strategy), raws)
    warm, _ = timed(lambda raw: plan_one(raw, args.strategy), raws)
    plan = learned_schedule if args.strategy == "learned" else generate_optimal_schedule
    fresh = [decode(ScheduleInput, raw) for raw in make_inputs(args.plans, args.seed + 1)]
    plan_only, _ = timed(lambda i: plan(i, NOW, horizon_days=7), fresh)
    report = {
        "strategy": args.strategy,
        "plans": args.plans,
        "horizonDays": 7,
        "plansPerSecond": round(args.plans / cold),
        "plansPerSecondWarm": round(args.plans / warm),
        "planOnlyPerSecond": round(args.plans / plan_only),
        "plansPerSecondWall": round(args.plans / cold_wall),
        "microsecondsPerPlan": round(cold / args.plans * 1e6, 1),
        "target": 5000,
        "met": args.plans / cold >= 5000,
    }
    print(orjson.dumps(report, option=0 if args.json else orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
