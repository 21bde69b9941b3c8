"""Per-account, per-endpoint caps: never more than the platform's figure in any window."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from contracts import Platform
from services.publishers.limits import ANY_ENDPOINT, PLATFORM_CAPS, POLLER_SHARES, Cap, EndpointLimits, hard_cap


@pytest.mark.parametrize("platform, endpoint", [(p, e) for p, caps in PLATFORM_CAPS.items() for e in caps])
def test_every_cap_allows_at_most_its_figure_per_window(platform, endpoint):
    cap = PLATFORM_CAPS[platform][endpoint]
    limiter = hard_cap(cap)
    # a bucket of b passes b at once, then one per time_period / b: a window of `period` holds
    # the burst and every later one that fits
    rate = limiter.max_rate / limiter.time_period
    assert limiter.max_rate + math.floor(rate * cap.period) <= cap.calls
    if cap.burst == 1:  # the caps a backlog runs into
        assert rate * cap.period / cap.calls >= 0.95, "a backlog goes at 95 % of the cap or more"


def test_the_platforms_figures():
    tiktok = PLATFORM_CAPS[Platform.TIKTOK]
    assert {e: (c.calls, c.period) for e, c in tiktok.items()} == {
        "creator_info": (20, 60.0), "video_init": (6, 60.0), "inbox_init": (6, 60.0),
        "content_init": (6, 60.0), "status_fetch": (30, 60.0)}
    assert PLATFORM_CAPS[Platform.INSTAGRAM]["*"] == Cap(200, 3600.0, burst=100)


@pytest.mark.parametrize("platform, endpoint", [(p, e) for p, shares in POLLER_SHARES.items() for e in shares])
def test_the_publisher_and_the_poller_together_stay_within_a_shared_cap(platform, endpoint):
    cap = PLATFORM_CAPS[platform][endpoint]
    parts = [EndpointLimits.for_platform(platform, poller=poller).caps[endpoint] for poller in (False, True)]
    assert sum(part.calls for part in parts) == cap.calls and all(part.period == cap.period for part in parts)
    windows = 0
    for part in parts:
        limiter = hard_cap(part)
        windows += limiter.max_rate + math.floor(limiter.max_rate / limiter.time_period * cap.period)
    assert windows <= cap.calls, "in any window, both services' calls together"


def test_each_service_gets_its_part_of_what_both_call_and_the_whole_of_the_rest():
    publisher = EndpointLimits.for_platform(Platform.TIKTOK).caps
    poller = EndpointLimits.for_platform(Platform.TIKTOK, poller=True).caps
    assert (publisher["status_fetch"], poller["status_fetch"]) == (Cap(6, 60.0, 2), Cap(24, 60.0, 8))
    assert publisher["video_init"] == poller["video_init"] == Cap(6, 60.0)  # only the publisher inits
    instagram = [EndpointLimits.for_platform(Platform.INSTAGRAM, poller=p).caps[ANY_ENDPOINT] for p in (False, True)]
    assert instagram == [Cap(150, 3600.0, 75), Cap(50, 3600.0, 25)]
    # a rate from the settings paces this service alone: it is not split
    assert EndpointLimits.for_platform(Platform.INSTAGRAM, Cap(5, 1.0), poller=True).caps == {ANY_ENDPOINT: Cap(5, 1.0)}


def test_a_split_keeps_one_call_on_each_side():
    assert Cap(2, 60.0).split(0.01) == (Cap(1, 60.0), Cap(1, 60.0))
    assert Cap(10, 60.0, burst=10).split(0.99) == (Cap(1, 60.0), Cap(9, 60.0, 9))


def test_instagram_lets_a_carousels_calls_through_at_once_and_tiktok_one_call_at_a_time():
    assert hard_cap(EndpointLimits.for_platform(Platform.INSTAGRAM).caps[ANY_ENDPOINT]).max_rate == 75
    tiktok = {endpoint: hard_cap(cap).max_rate for endpoint, cap in EndpointLimits.for_platform(Platform.TIKTOK).caps.items()}
    assert tiktok == {"creator_info": 1, "video_init": 1, "inbox_init": 1, "content_init": 1, "status_fetch": 2}
    poller = EndpointLimits.for_platform(Platform.TIKTOK, poller=True).caps
    assert hard_cap(poller["status_fetch"]).max_rate == 8  # a post is checked many times while it processes


async def test_a_backlog_goes_evenly_spaced_and_never_more_than_the_cap_in_any_window():
    cap = Cap(6, 0.3)
    limiter = hard_cap(cap)
    loop = asyncio.get_running_loop()
    start = loop.time()
    times = []
    for _ in range(12):
        async with limiter:
            times.append(loop.time())
    assert times[0] - start < 0.05  # the first call does not wait
    for t in times:  # delays on a busy machine only spread them further
        assert sum(1 for u in times if t <= u <= t + cap.period) <= cap.calls
    assert min(b - a for a, b in zip(times, times[1:])) >= cap.period / cap.calls * 0.99


async def test_caps_are_per_account_and_per_endpoint():
    limits = EndpointLimits({"video_init": Cap(2, 60.0)})
    loop = asyncio.get_running_loop()
    start = loop.time()
    for account in ("a", "b"):  # one call each: neither waits for the other
        async with limits.slot(account, "video_init"):
            pass
    async with limits.slot("a", "status_fetch"):  # no cap on that endpoint
        pass
    assert loop.time() - start < 0.05
    assert limits.limiter("a", "video_init") is limits.limiter("a", "video_init")
    assert limits.limiter("a", "video_init") is not limits.limiter("b", "video_init")


def test_a_catch_all_cap_and_pauses():
    limits = EndpointLimits({"*": Cap(200, 3600.0)})
    assert limits.limiter("acct", "media") is limits.limiter("acct", "node")  # one budget per account
    assert limits.paused_for("acct") == 0.0
    limits.pause("acct", 0.05)
    assert 0 < limits.paused_for("acct") <= 0.05
    time.sleep(0.06)
    assert limits.paused_for("acct") == 0.0
