"""The original shape in and out (`ScheduleInput` → `ScheduleSlot`s), with any strategy.

The original `generateOptimalSchedule` is the heuristic strategy through the common search.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from contracts import Blackout, ScheduleInput, ScheduleSlot

from ._hour_of_week import zone_named
from ._rules import NO_LIMITS, SlotRules
from ._slot_search import rank_slots
from ._strategies import (
    Exploration,
    ExplorationSettings,
    HeuristicStrategy,
    LearnedStrategy,
    ScoringRequest,
    Strategy,
)
from ._window import scheduling_window

_HEURISTIC = HeuristicStrategy()
# Without an account to learn from there is nothing to explore for: rank by expectation.
_PRIOR_ONLY = LearnedStrategy(exploration=ExplorationSettings(mode=Exploration.GREEDY))


def generate_optimal_schedule(
    schedule_input: ScheduleInput,
    now: datetime,
    *,
    count: int = 1,
    horizon_days: float = 7,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> list[ScheduleSlot]:
    """The `count` best distinct slots, by expected engagement and then time.

    Candidates are the starts of the audience's active hours on its peak days (in its
    timezone) inside the window [max(now, not_before), min(not_after, start + horizon_days)],
    plus the window's opening minute when it falls in such an hour. A slot scores its local
    hour's engagement (see `hour_scores`). With no candidate on a peak day, any day will do;
    with none at all, the window's opening is the one slot, scored 0.

    The input's blackouts are not looked at, as the original had none: `schedule_with` with
    `HeuristicStrategy` keeps them.
    """
    return _ranked_slots(_HEURISTIC, schedule_input, (), now, count, horizon_days, not_before, not_after)


def schedule_with(
    strategy: Strategy,
    schedule_input: ScheduleInput,
    now: datetime,
    *,
    count: int = 1,
    horizon_days: float = 7,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> list[ScheduleSlot]:
    """The `count` best distinct slots by `strategy`, outside the input's blackouts.

    Empty when the blackouts leave no instant of the window.
    """
    return _ranked_slots(strategy, schedule_input, schedule_input.blackouts, now, count, horizon_days,
                         not_before, not_after)


def learned_schedule(schedule_input: ScheduleInput, now: datetime, **options) -> list[ScheduleSlot]:
    """`generate_optimal_schedule`'s learned counterpart, for an account with no readings yet."""
    return schedule_with(_PRIOR_ONLY, schedule_input, now, **options)


def _ranked_slots(
    strategy: Strategy,
    schedule_input: ScheduleInput,
    blackouts: Sequence[Blackout],
    now: datetime,
    count: int,
    horizon_days: float,
    not_before: datetime | None,
    not_after: datetime | None,
) -> list[ScheduleSlot]:
    if count < 1:
        raise ValueError("count must be at least 1")
    window = scheduling_window(now, horizon_days, not_before, not_after)
    audience = schedule_input.audience_data
    zone = zone_named(audience.timezone)
    scores = strategy.scores(ScoringRequest(
        platform=schedule_input.platform, content_type=schedule_input.content_type,
        audience=audience, audience_given=True,
        history=schedule_input.historical_performance, now_epoch=window.start.timestamp(),
    ))
    rules = SlotRules(NO_LIMITS, zone, (), blackouts)
    return [
        # every field is valid already; validating would cost more than the search
        ScheduleSlot.model_construct(
            timestamp=datetime.fromtimestamp(slot.epoch, timezone.utc),
            platform=schedule_input.platform,
            content_type=schedule_input.content_type,
            expected_engagement=slot.expected,
        )
        for slot in rank_slots(window, zone, scores, rules, count)
    ]
