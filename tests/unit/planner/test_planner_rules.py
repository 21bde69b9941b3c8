"""The rules a slot must keep: blackouts, spacing, daily caps, quota windows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import Blackout
from services.planner.domain import (
    NO_LIMITS,
    PlatformLimits,
    QuotaWindow,
    SlotRules,
    scheduling_window,
    window_candidates,
)
from services.planner.domain._hour_of_week import candidate_at

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, 14:00 in Paris
HOUR = 3600.0


def at(hours: float) -> float:
    return T0.timestamp() + hours * HOUR


def allows(rules: SlotRules, epoch: float) -> bool:
    return rules.allows(candidate_at(epoch, rules.zone))


def test_no_rules_allow_everything():
    rules = SlotRules(NO_LIMITS, PARIS)
    assert allows(rules, at(0)) and rules.next_allowed(at(0), at(1)) == at(0)


def test_minimum_spacing_keeps_an_accounts_posts_apart():
    rules = SlotRules(PlatformLimits(min_spacing_seconds=2 * HOUR), PARIS, planned=[at(10)])
    assert not allows(rules, at(8.5)) and not allows(rules, at(11.9))
    assert allows(rules, at(8)) and allows(rules, at(12)), "exactly the spacing apart is fine"
    assert rules.next_allowed(at(9), at(30)) == at(12)


def test_a_daily_cap_counts_posts_of_the_local_day():
    # 23:30 Paris on Monday is 21:30 UTC: the same local day as Monday 14:00
    planned = [at(0), at(9.5)]
    rules = SlotRules(PlatformLimits(daily_cap=2), PARIS, planned=planned)
    assert not allows(rules, at(4))
    tuesday = datetime(2026, 6, 2, 0, 0, tzinfo=PARIS).timestamp()
    assert allows(rules, tuesday)
    assert rules.next_allowed(at(4), at(48)) == tuesday


def test_a_rolling_quota_window_is_checked_over_every_span():
    quota = PlatformLimits(quota_windows=(QuotaWindow(3, 24 * HOUR),))
    rules = SlotRules(quota, PARIS, planned=[at(0), at(5), at(20)])
    assert not allows(rules, at(10)), "four posts inside one day"
    assert allows(rules, at(25)), "the one at 0 h has left every window that holds 25 h"
    assert allows(rules, at(24.5)), "no window of one day holds more than 5, 20 and 24.5 h"
    assert rules.next_allowed(at(10), at(60)) == at(24)


def test_a_rolling_quota_counts_the_posts_planned_after_the_candidate():
    # fifteen TikTok posts already booked over the next day (fixed times): a sixteenth now
    # would make sixteen in the day that starts with it
    quota = PlatformLimits(quota_windows=(QuotaWindow(15, 24 * HOUR),))
    rules = SlotRules(quota, PARIS, planned=[at(1 + h) for h in range(15)])
    assert not allows(rules, at(0))
    assert not rules.mask(window_candidates(scheduling_window(T0, 1), PARIS))[0]
    assert rules.next_allowed(at(0), at(60)) == at(25), "once the first of them has left every window"


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(-30, 30), max_size=10), st.integers(-30, 30), st.integers(1, 4))
def test_a_rolling_quota_allows_exactly_what_no_full_window_holds(hours, candidate, limit):
    planned, t, seconds = sorted(at(h) for h in hours), at(candidate), 24 * HOUR
    rules = SlotRules(PlatformLimits(quota_windows=(QuotaWindow(limit, seconds),)), UTC, planned=planned)
    # every window [a, a + 24 h) that holds t, a probed every half hour and at each post
    starts = [t - seconds + 1800.0 * k for k in range(1, 49)] + [p for p in planned if t - seconds < p <= t]
    full = any(sum(a <= p < a + seconds for p in planned) >= limit for a in starts)
    assert allows(rules, t) is not full


def test_a_cap_of_zero_allows_nothing():
    rules = SlotRules(PlatformLimits(daily_cap=0), PARIS)
    assert not allows(rules, at(1)) and rules.next_allowed(at(0), at(100)) is None


def test_an_absolute_blackout_excludes_its_span_and_not_its_end():
    blackout = Blackout(start=T0, end=T0 + timedelta(hours=3))
    rules = SlotRules(NO_LIMITS, PARIS, blackouts=[blackout])
    assert not allows(rules, at(0)) and not allows(rules, at(2.99))
    assert allows(rules, at(3)) and rules.next_allowed(at(1), at(10)) == at(3)


def test_a_recurring_blackout_over_midnight_on_chosen_days():
    # Friday and Saturday nights, 22:00 to 07:00 Paris time
    blackout = Blackout(local_start="22:00", local_end="07:00", weekdays=["friday", "saturday"])
    rules = SlotRules(NO_LIMITS, PARIS, blackouts=[blackout])

    def paris(day: int, hour: int, minute: int = 0) -> float:
        return datetime(2026, 6, day, hour, minute, tzinfo=PARIS).timestamp()

    assert not allows(rules, paris(5, 23))  # Friday 23:00
    assert not allows(rules, paris(6, 6, 59))  # Saturday morning, the Friday night's end
    assert allows(rules, paris(6, 7))
    assert not allows(rules, paris(7, 3))  # Sunday morning, Saturday's night
    assert allows(rules, paris(7, 22)) and allows(rules, paris(4, 23)), "Sunday and Thursday nights are free"
    assert rules.next_allowed(paris(5, 23), paris(9, 0)) == paris(6, 7)


def test_a_recurring_blackout_in_its_own_timezone():
    blackout = Blackout(local_start="09:00", local_end="17:00", timezone="America/New_York")
    rules = SlotRules(NO_LIMITS, PARIS, blackouts=[blackout])
    assert not allows(rules, datetime(2026, 6, 1, 15, 0, tzinfo=PARIS).timestamp())  # 09:00 in New York
    assert allows(rules, datetime(2026, 6, 1, 14, 59, tzinfo=PARIS).timestamp())


def test_recurring_blackouts_follow_the_wall_clock_across_a_clock_change():
    # 01:00-03:00 every day; on 2026-03-29 Paris skips 02:00-03:00
    blackout = Blackout(local_start="01:00", local_end="03:00")
    rules = SlotRules(NO_LIMITS, PARIS, blackouts=[blackout])
    one = datetime(2026, 3, 29, 1, 0, tzinfo=PARIS).timestamp()
    assert not allows(rules, one)
    # the blackout ends when the wall clock reads 03:00, one real hour after 01:00 that night
    assert rules.next_allowed(one, one + 10 * HOUR) == one + HOUR


@st.composite
def rule_cases(draw):
    zone = ZoneInfo(draw(st.sampled_from(["Europe/Paris", "America/Santiago", "Asia/Kolkata", "UTC",
                                          "Australia/Lord_Howe"])))
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 365 * 1440)))
    planned = sorted(start.timestamp() + draw(st.integers(-2 * 86_400, 9 * 86_400))
                     for _ in range(draw(st.integers(0, 12))))
    limits = PlatformLimits(
        min_spacing_seconds=draw(st.sampled_from([0, 1800, 7200])),
        daily_cap=draw(st.sampled_from([None, 1, 2, 4])),
        quota_windows=tuple(QuotaWindow(draw(st.integers(1, 4)), draw(st.sampled_from([3600, 86_400])))
                            for _ in range(draw(st.integers(0, 2)))),
    )
    blackouts = []
    if draw(st.booleans()):
        begin = start + timedelta(hours=draw(st.integers(0, 100)))
        blackouts.append(Blackout(start=begin, end=begin + timedelta(hours=draw(st.integers(1, 30)))))
    if draw(st.booleans()):
        blackouts.append(Blackout(local_start=f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 30])):02d}",
                                  local_end=f"{draw(st.integers(0, 23)):02d}:15",
                                  weekdays=draw(st.lists(st.sampled_from(["monday", "saturday", "sunday"]),
                                                         max_size=2))))
    return zone, start, planned, limits, blackouts


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(rule_cases())
def test_the_mask_says_of_every_candidate_what_the_rules_say_of_it(case):
    zone, start, planned, limits, blackouts = case
    rules = SlotRules(limits, zone, planned, blackouts)
    candidates = window_candidates(scheduling_window(start, 7), zone)
    mask = rules.mask(candidates)
    expected = [rules.allows(candidates.at(i)) for i in range(len(candidates))]
    assert (mask.tolist() if mask is not None else [True] * len(candidates)) == expected


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(rule_cases())
def test_next_allowed_is_allowed_and_nothing_before_it_is(case):
    zone, start, planned, limits, blackouts = case
    rules = SlotRules(limits, zone, planned, blackouts)
    begin, end = start.timestamp(), start.timestamp() + 10 * 86_400
    found = rules.next_allowed(begin, end)
    # it is the first: instants before it (probed every seven minutes, for three days) are not
    probe = np.arange(begin, min(found if found is not None else end, begin + 3 * 86_400), 60.0)
    for epoch in probe[::7]:
        assert not allows(rules, float(epoch))
    if found is not None:
        assert begin <= found <= end and allows(rules, found)
