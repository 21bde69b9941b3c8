"""The sandboxes' hidden engagement: deterministic, growing with age, shaped by the local hour."""

from datetime import datetime, timezone

import httpx
import pytest

import sandbox
from sandbox import AccountTruth, EngagementSimulation, SandboxSettings

DAY = datetime(2026, 3, 3, tzinfo=timezone.utc)  # a Tuesday


@pytest.fixture
def simulation() -> EngagementSimulation:
    return EngagementSimulation(SandboxSettings(engagement_timescale_seconds=3600))


def test_every_account_has_a_truth_of_its_own_and_keeps_it(simulation):
    a, b = simulation.truth("tiktok", "a"), simulation.truth("tiktok", "b")
    assert a == EngagementSimulation(SandboxSettings()).truth("tiktok", "a")
    assert a != b
    assert simulation.truth("instagram", "a") != a, "one name on two platforms is two accounts"


def test_figures_grow_with_age_and_repeat_for_the_same_age(simulation):
    published = DAY.timestamp()
    hour = simulation.figures("tiktok", "a", "post-1", published, published + 3600)
    day = simulation.figures("tiktok", "a", "post-1", published, published + 86_400)
    assert day == simulation.figures("tiktok", "a", "post-1", published, published + 86_400)
    assert all(day[k] >= hour[k] for k in day) and day["likes"] > hour["likes"]


def test_the_local_hour_a_post_goes_out_at_is_what_matters(simulation):
    truth = AccountTruth(timezone="America/New_York", level=0.05, lunch=(12.5, 0.4), evening=(20.5, 1.0),
                         weekend_shift=1.0, followers=50_000, growth_per_day=0.0)
    simulation.set_truth("youtube", "ch", truth)
    evening = datetime(2026, 3, 4, 1, 0, tzinfo=timezone.utc).timestamp()  # 20:00 in New York
    night = datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc).timestamp()  # 04:00 in New York
    assert truth.rate(evening) == pytest.approx(0.05, rel=0.03)
    assert truth.rate(night) < truth.rate(evening) / 4
    late = 3 * 86_400
    good = simulation.figures("youtube", "ch", "p1", evening, evening + late)
    bad = simulation.figures("youtube", "ch", "p2", night, night + late)
    assert sum(good.values()) > sum(bad.values())


def test_audiences_grow(simulation):
    truth = simulation.truth("tiktok", "a")
    assert truth.followers_at(DAY.timestamp() + 30 * 86_400) >= truth.followers_at(DAY.timestamp())


async def test_the_truth_is_shown_on_the_admin_route_and_unknown_instagram_nodes_stay_unknown():
    app = sandbox.create_app(SandboxSettings(processing_seconds=0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        shown = (await http.get("/_sandbox/engagement", params={"platform": "tiktok", "accountId": "a"})).json()
        assert shown["timezone"] == app.state.sandbox.engagement.truth("tiktok", "a").timezone
        assert shown["followersNow"] > 0
        assert (await http.get("/_sandbox/engagement", params={"platform": "myspace"})).status_code == 400
        node = await http.get("/instagram/v25.0/1784000?fields=followers_count",
                              headers={"Authorization": "Bearer sandbox:1784000"})
        assert node.status_code == 400, "an account that never published is not a node"
