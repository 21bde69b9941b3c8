"""The in-flight limit keeps a platform's publish requests out for about a quarter of a lease."""

import pytest

from services.queue.domain import InFlightLimit


def _complete_at_rate(limit: InFlightLimit, per_second: float, seconds: float, start: float = 1000.0) -> float:
    at, step = start, 1.0 / per_second
    while at < start + seconds:
        limit.completed(at)
        at += step
    return at


def test_the_ceiling_until_a_rate_is_known():
    limit = InFlightLimit(ceiling=500, lease_seconds=600)
    limit.completed(1000.0, 40)
    assert limit.limit == 500, "one window has not passed yet"


def test_a_slow_platform_gets_what_it_finishes_in_a_quarter_lease():
    limit = InFlightLimit(ceiling=500, lease_seconds=60)
    _complete_at_rate(limit, per_second=10, seconds=30)
    # 10 per second x 15 s
    assert 140 <= limit.limit <= 160


def test_a_fast_platform_is_held_at_the_ceiling_and_a_stalled_one_at_the_floor():
    fast = InFlightLimit(ceiling=500, lease_seconds=600)
    _complete_at_rate(fast, per_second=50, seconds=20)
    assert fast.limit == 500
    slow = InFlightLimit(ceiling=500, lease_seconds=20, floor=20)
    _complete_at_rate(slow, per_second=0.5, seconds=60)
    assert slow.limit == 20


def test_it_follows_a_platform_that_slows_down():
    limit = InFlightLimit(ceiling=1000, lease_seconds=60)
    end = _complete_at_rate(limit, per_second=40, seconds=30)
    before = limit.limit
    _complete_at_rate(limit, per_second=8, seconds=30, start=end)
    assert before >= 500 and limit.limit <= 150, (before, limit.limit)


def test_a_ceiling_under_the_floor_wins():
    limit = InFlightLimit(ceiling=2, lease_seconds=600)
    _complete_at_rate(limit, per_second=0.2, seconds=60)
    assert limit.limit == 2


def test_a_replica_seeing_half_the_results_learns_the_limit_of_all():
    alone, half = InFlightLimit(ceiling=5000, lease_seconds=60), InFlightLimit(ceiling=5000, lease_seconds=60)
    at, step = 1000.0, 0.1
    while at < 1030.0:  # 10 a second in all; the replica with half the partitions sees every other
        alone.completed(at)
        if round(at / step) % 2 == 0:
            half.completed(at, share=0.5)
        at += step
    assert half.limit == pytest.approx(alone.limit, rel=0.1)
    assert 130 <= alone.limit <= 160
