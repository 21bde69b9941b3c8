"""When one target goes out, as the event's schedule request asks, within the rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from contracts import (
    AsSoonAsPossible,
    AtTime,
    AudienceData,
    ContentSubmitted,
    HistoricalPerformance,
    OptimalWithin,
    TargetSpec,
    target_id_for,
)

from ._context import ChosenTime, PlanningContext
from ._hour_of_week import candidate_at, zone_named
from ._rejection import PlanningRejected
from ._rules import SlotRules
from ._slot_search import choose_slot
from ._strategies import ScoringRequest, seed_for
from ._window import scheduling_window

# An `at` time this close behind us is clock skew or transit delay, not a stale request.
AT_TIME_GRACE = timedelta(seconds=60)


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
    event: ContentSubmitted, target: TargetSpec, audience: AudienceData, now: datetime,
    context: PlanningContext,
) -> ChosenTime:
    """The time for one target; `audience` is the event's, or the platform's default.

    `optimal` takes the strategy's best allowed slot in the window, `asap` the first allowed
    instant, `at` its own time (kept as asked: the rules are for times the planner chooses).
    """
    key = (target.platform, target.account_id)
    zone = zone_named(audience.timezone)
    history = event.historical_performance or HistoricalPerformance()
    readings = context.readings.get(key)
    target_id = target_id_for(event.post_id, target.platform, target.account_id)
    strategy = context.strategy
    scores = strategy.scores(ScoringRequest(
        platform=target.platform, content_type=event.content_type, audience=audience,
        audience_given=event.audience_data is not None, history=history,
        now_epoch=now.timestamp(),
        readings=readings.readings if readings else (),
        readings_key=(key, readings.key) if readings else None,
        seed=seed_for(target_id, now.timestamp() // 3600),
        account_id=target.account_id,
    ))
    request = event.schedule
    if isinstance(request, AtTime):
        at = request.scheduled_time.astimezone(timezone.utc)
        return ChosenTime(at, scores.expected_at(candidate_at(at.timestamp(), zone)), "fixed")
    rules = SlotRules(context.limits[target.platform], zone, context.calendar(key), event.blackouts)
    if isinstance(request, OptimalWithin):
        window = scheduling_window(now, context.horizon_days, request.not_before, request.not_after)
        slot = choose_slot(window, zone, scores, rules)
        if slot is None:
            raise _no_slot(target, window.start, window.end)
        return ChosenTime(_utc(slot.epoch), slot.expected, strategy.name)
    end = now + timedelta(days=context.horizon_days)
    epoch = rules.next_allowed(now.timestamp(), end.timestamp())
    if epoch is None:
        raise _no_slot(target, now, end)
    moment = now if epoch == now.timestamp() else _utc(epoch)
    return ChosenTime(moment, scores.expected_at(candidate_at(epoch, zone)), "asap")


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def _no_slot(target: TargetSpec, start: datetime, end: datetime) -> PlanningRejected:
    return PlanningRejected(
        "no_allowed_slot",
        f"no time from {start.isoformat()} to {end.isoformat()} is free for "
        f"{target.platform.value}:{target.account_id} (blackouts, spacing, daily cap or quota)",
    )
