"""When one target goes out, as the event's schedule request asks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from contracts import (
    AsSoonAsPossible,
    AtTime,
    AudienceData,
    ContentSubmitted,
    HistoricalPerformance,
    OptimalWithin,
    Platform,
    ScheduleInput,
)

from ._hour_scores import hour_scores
from ._optimal_schedule import generate_optimal_schedule
from ._rejection import PlanningRejected

# An `at` time this close behind us is clock skew or transit delay, not a stale request.
AT_TIME_GRACE = timedelta(seconds=60)
PLANNING_HORIZON_DAYS = 7


@dataclass(frozen=True, slots=True)
class ChosenTime:
    scheduled_time: datetime
    expected_engagement: float
    strategy: str


def reject_if_closed(request: OptimalWithin | AtTime | AsSoonAsPossible, now: datetime) -> None:
    """Raise `PlanningRejected` when the request can no longer be honoured at `now`."""
    if isinstance(request, AtTime) and request.scheduled_time < now - AT_TIME_GRACE:
        raise PlanningRejected(
            "window_in_past",
            f"scheduledTime {request.scheduled_time.isoformat()} is more than "
            f"{AT_TIME_GRACE.total_seconds():.0f} s before now ({now.isoformat()})",
        )
    if isinstance(request, OptimalWithin) and request.not_after and request.not_after <= now:
        raise PlanningRejected(
            "window_in_past",
            f"notAfter {request.not_after.isoformat()} is not after now ({now.isoformat()})",
        )


def choose_time(
    event: ContentSubmitted, platform: Platform, audience: AudienceData, now: datetime
) -> ChosenTime:
    """The time for one target; `audience` is the event's, or the platform's default."""
    request = event.schedule
    history = event.historical_performance or HistoricalPerformance()
    if isinstance(request, OptimalWithin):
        schedule_input = ScheduleInput.model_construct(  # its parts are validated already
            platform=platform,
            audience_data=audience,
            content_type=event.content_type,
            historical_performance=history,
        )
        (slot,) = generate_optimal_schedule(
            schedule_input,
            now,
            horizon_days=PLANNING_HORIZON_DAYS,
            not_before=request.not_before,
            not_after=request.not_after,
        )
        return ChosenTime(slot.timestamp, slot.expected_engagement, "heuristic")
    if isinstance(request, AtTime):
        at = request.scheduled_time.astimezone(timezone.utc)
        return ChosenTime(at, _engagement_at(at, event.audience_data, history), "fixed")
    return ChosenTime(now, _engagement_at(now, event.audience_data, history), "asap")


def _engagement_at(
    moment: datetime, audience: AudienceData | None, history: HistoricalPerformance
) -> float:
    """The score of the moment's local hour; without audience data we cannot tell its hour."""
    if audience is None:
        return 0.0
    return hour_scores(history)[moment.astimezone(ZoneInfo(audience.timezone)).hour]
