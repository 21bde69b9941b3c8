"""The original shape in and out (`ScheduleInput` → `ScheduleSlot`s), with any strategy."""

from __future__ import annotations

from datetime import datetime, timezone

from contracts import ScheduleInput, ScheduleSlot

from ._hour_of_week import zone_named
from ._rules import NO_LIMITS, SlotRules
from ._slot_search import rank_slots
from ._strategies import (
    Exploration,
    ExplorationSettings,
    LearnedStrategy,
    ScoringRequest,
    Strategy,
)
from ._window import scheduling_window

# Without an account to learn from there is nothing to explore for: rank by expectation.
_PRIOR_ONLY = LearnedStrategy(exploration=ExplorationSettings(mode=Exploration.GREEDY))


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
    rules = SlotRules(NO_LIMITS, zone, (), schedule_input.blackouts)
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


def learned_schedule(schedule_input: ScheduleInput, now: datetime, **options) -> list[ScheduleSlot]:
    """`generate_optimal_schedule`'s learned counterpart, for an account with no readings yet."""
    return schedule_with(_PRIOR_ONLY, schedule_input, now, **options)
