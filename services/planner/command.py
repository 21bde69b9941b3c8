"""`autopost plan INPUT.json`: the planner's slots for inputs in the original shape.

    {"platform", "audienceData", "contentType", "historicalPerformance"?, "blackouts"?}
      → [{"timestamp", "platform", "contentType", "expectedEngagement"}, ...]

An array of inputs gives an array of results. The learned strategy plans from its priors
here (there is no account to learn from), ranked by expected engagement.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import orjson

from contracts import ContractError, ScheduleInput, decode

from .domain import generate_optimal_schedule, learned_schedule


class InputError(ValueError):
    """Input that is not a planning request; the message names the file and field."""


def load_inputs(path: Path) -> tuple[list[ScheduleInput], bool]:
    """The inputs in `path`, and whether it held an array of them."""
    try:
        data: Any = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON: {exc}") from None
    many = isinstance(data, list)
    items = data if many else [data]
    if many and not items:
        raise InputError(f"{path}: the array holds no input")
    inputs = []
    for index, item in enumerate(items):
        where = f"[{index}]." if many else ""
        try:
            inputs.append(decode(ScheduleInput, orjson.dumps(item)))
        except ContractError as error:
            problems = "; ".join(f"{where}{d['field'] or '(root)'}: {d['message']}" for d in error.details) \
                or f"{where}(root): {error.message}"
            raise InputError(f"{path}: {problems}") from None
    return inputs, many


def plan(inputs: list[ScheduleInput], now: datetime, *, count: int, horizon_days: float,
         strategy: str) -> list[list[dict[str, Any]]]:
    results = []
    for schedule_input in inputs:
        if strategy == "heuristic":
            slots = generate_optimal_schedule(schedule_input, now, count=count, horizon_days=horizon_days)
        else:
            slots = learned_schedule(schedule_input, now, count=count, horizon_days=horizon_days)
        results.append([slot.to_wire() for slot in slots])
    return results


def run(path: str, *, count: int, horizon_days: float, strategy: str, now: str | None,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if count < 1:
        print("autopost plan: --count must be at least 1", file=err)
        return 2
    if horizon_days <= 0:
        print("autopost plan: --horizon-days must be more than 0", file=err)
        return 2
    try:
        moment = _instant(now)
        inputs, many = load_inputs(Path(path))
    except InputError as error:
        print(f"autopost plan: {error}", file=err)
        return 2
    results = plan(inputs, moment, count=count, horizon_days=horizon_days, strategy=strategy)
    out.write(orjson.dumps(results if many else results[0], option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--now {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InputError(f"--now {text!r} needs an offset (e.g. Z)")
    return moment
