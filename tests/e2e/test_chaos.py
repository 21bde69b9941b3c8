"""A small chaos run in the suite: crashes, a paused broker, a lost topic, a cut database and
flaky platforms, and still nothing lost, nothing posted twice, nothing stuck."""

import pytest

from services.devstack.chaos import ChaosPlan, run_chaos

pytestmark = pytest.mark.e2e


async def test_nothing_lost_nothing_posted_twice_nothing_stuck_under_chaos():
    plan = ChaosPlan(posts=20, chaos_seconds=24, kill_every_seconds=3.0, drain_timeout_seconds=180, seed=11)
    result = await run_chaos(plan, output=None)
    events = "\n".join(result["events"])
    assert sum(result["kills"].values()) >= 5, events
    assert any("broker paused" in e for e in result["events"])
    assert any("lost (deleted and recreated)" in e for e in result["events"])
    assert any("database unreachable" in e for e in result["events"])
    assert (result["lost"], result["duplicates"], result["stuck"]) == (0, 0, 0), (result, events)
    # the one failure the platforms allow: a TikTok init whose answer was lost cannot be looked
    # up (platforms.md 1.9), so it is left for a person to review, never sent twice
    assert set(result["not_posted"]) <= {"failed:needs_review"}, result
