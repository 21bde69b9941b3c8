"""The strategies: the heuristic kept, the learned one starting from priors and learning."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import (
    WEEKDAYS,
    AudienceData,
    BestTime,
    Blackout,
    ContentType,
    EngagementFigures,
    HistoricalPerformance,
    Platform,
    ScheduleInput,
)
from services.planner.domain import (
    Exploration,
    ExplorationSettings,
    HeuristicStrategy,
    IndustryTimesStrategy,
    LearnedStrategy,
    LearningSettings,
    Reading,
    ScoringRequest,
    engagement_rate,
    generate_optimal_schedule,
    hour_of_week,
    learned_schedule,
    level_of,
    reading_from,
    schedule_with,
)

UTC = timezone.utc
NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # a Monday
AUDIENCE = AudienceData(timezone="UTC", activity_hours=[12, 18, 19, 20], peak_days=["tuesday", "thursday"])
HISTORY = HistoricalPerformance(best_times=[BestTime(hour=19, engagement_rate=0.07),
                                            BestTime(hour=12, engagement_rate=0.04)])


def request(readings=(), audience=AUDIENCE, history=HISTORY, seed=0, key=None) -> ScoringRequest:
    return ScoringRequest(platform=Platform.TIKTOK, content_type=ContentType.VIDEO, audience=audience,
                          audience_given=True, history=history, now_epoch=NOW.timestamp(),
                          readings=tuple(readings), readings_key=key, seed=seed)


def best_hour(scores_array) -> tuple[int, int]:
    return divmod(int(np.argmax(scores_array)), 24)


# -- the heuristic, kept --------------------------------------------------------------------

schedule_inputs = st.builds(
    lambda zone, hours, days, rates: ScheduleInput(
        platform="instagram", content_type="reel",
        audience_data=AudienceData(timezone=zone, activity_hours=hours, peak_days=days),
        historical_performance=HistoricalPerformance(best_times=[BestTime(hour=h, engagement_rate=r)
                                                                 for h, r in rates])),
    zone=st.sampled_from(["UTC", "Europe/London", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata",
                          "America/Havana", "Pacific/Chatham"]),
    hours=st.lists(st.integers(0, 23), min_size=1, max_size=24),
    days=st.lists(st.sampled_from(WEEKDAYS), max_size=7),
    rates=st.lists(st.tuples(st.integers(0, 23), st.sampled_from([0.0, 0.02, 0.05, 0.1])), max_size=6),
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(schedule_inputs, st.integers(0, 400 * 86_400), st.integers(1, 30), st.sampled_from([0, 1, 2, 7]))
def test_the_heuristic_strategy_gives_what_generate_optimal_schedule_gives(schedule_input, offset, count, horizon):
    now = datetime(2025, 9, 1, tzinfo=UTC) + timedelta(seconds=offset, microseconds=offset % 7)
    original = generate_optimal_schedule(schedule_input, now, count=count, horizon_days=horizon)
    through_search = schedule_with(HeuristicStrategy(), schedule_input, now, count=count, horizon_days=horizon)
    assert [(s.timestamp, s.expected_engagement) for s in through_search] == \
        [(s.timestamp, s.expected_engagement) for s in original]


def test_generate_optimal_schedule_keeps_out_of_the_inputs_blackouts():
    schedule_input = ScheduleInput(platform="tiktok", content_type="video", audience_data=AUDIENCE,
                                   historical_performance=HISTORY)
    (best,) = generate_optimal_schedule(schedule_input, NOW)
    assert best.timestamp == datetime(2026, 6, 2, 19, 0, tzinfo=UTC), "Tuesday at the best hour"
    evenings = schedule_input.model_copy(update={"blackouts": [Blackout(local_start="18:30", local_end="23:00")]})
    slots = generate_optimal_schedule(evenings, NOW, count=3)
    assert [(s.timestamp.day, s.timestamp.hour) for s in slots] == [(2, 18), (4, 18), (2, 12)], \
        "the evening's start before 18:30, then noon: never 19:00 or 20:00"


def test_industry_times_are_the_same_for_every_account():
    a = IndustryTimesStrategy().scores(request())
    b = IndustryTimesStrategy().scores(request(audience=AudienceData(timezone="UTC", activity_hours=[3])))
    assert (a.tiers[0] == b.tiers[0]).all()
    assert best_hour(a.tiers[0])[1] in (19, 20), "TikTok's published busy evening"


# -- the learned strategy: priors ------------------------------------------------------------

def test_a_new_account_starts_from_its_best_times_and_active_hours():
    greedy = LearnedStrategy(exploration=ExplorationSettings(mode=Exploration.GREEDY))
    expected = greedy.scores(request()).expected
    day, hour = best_hour(expected)
    assert hour == 19 and WEEKDAYS[day] in ("tuesday", "thursday")
    # the reported rate is what it expects there, give or take its uncertainty
    assert 0.05 < expected[hour_of_week(1, 19)] < 0.1
    assert expected[hour_of_week(1, 19)] > expected[hour_of_week(1, 12)] > expected[hour_of_week(1, 4)]


def test_without_history_the_population_and_the_audience_decide():
    greedy = LearnedStrategy(exploration=ExplorationSettings(mode=Exploration.GREEDY))
    expected = greedy.scores(request(history=HistoricalPerformance())).expected
    assert best_hour(expected)[1] in AUDIENCE.activity_hours
    assert expected[hour_of_week(1, 19)] > expected[hour_of_week(1, 3)] * 2, "nights are quiet"


def test_content_types_start_at_their_populations_level():
    strategy = LearnedStrategy()
    story = strategy.estimate_for(replace(request(history=HistoricalPerformance()), platform=Platform.INSTAGRAM,
                                          content_type=ContentType.STORY))
    reel = strategy.estimate_for(replace(request(history=HistoricalPerformance()), platform=Platform.INSTAGRAM,
                                         content_type=ContentType.REEL))
    assert reel.expected.mean() > 2 * story.expected.mean()


# -- the learned strategy: learning ----------------------------------------------------------

def readings_at(how: int, rate: float, count: int, age: float = 86_400.0, days_ago: float = 3) -> list[Reading]:
    epoch = NOW.timestamp() - days_ago * 86_400
    return [Reading(how=how, epoch=epoch, rate=rate, age_seconds=age, content_type=ContentType.VIDEO)] * count


def test_readings_move_the_estimate_and_thin_data_is_shrunk_toward_the_prior():
    strategy = LearnedStrategy()
    tuesday_23, tuesday_12 = hour_of_week(1, 23), hour_of_week(1, 12)
    before, one, many = (strategy.estimate_for(request(readings_at(tuesday_23, 0.2, n) if n else ())).expected
                         for n in (0, 1, 40))
    assert before[tuesday_23] < one[tuesday_23] < many[tuesday_23]
    assert many[tuesday_23] == pytest.approx(0.2, rel=0.15), "forty are believed"
    # one post mostly tells the account's level; what it says of its hour against the others
    # takes more posts to believe
    assert one[tuesday_23] / one[tuesday_12] < many[tuesday_23] / many[tuesday_12]


def test_the_history_places_the_level_without_pinning_it():
    """Best times may be old or another account's of the brand: readings three times their
    level lift the hours the account did not post at too, not only the one it posted at."""
    strategy = LearnedStrategy()
    evening, noon, saturday = hour_of_week(1, 19), hour_of_week(1, 12), hour_of_week(5, 12)
    prior = strategy.estimate_for(request()).expected
    learnt = strategy.estimate_for(request(readings_at(evening, 3 * prior[evening], 10))).expected
    lift = np.log(learnt / prior)
    assert lift[evening] == pytest.approx(math.log(3), rel=0.1)
    assert lift[noon] > lift[evening] / 2 and lift[saturday] > lift[evening] / 2


def test_a_content_type_posted_at_some_hours_does_not_make_them_look_better():
    """Images do as well at noon as at 20:00; videos, posted at 20:00 only, do twice as well
    as the population's ratio between the two says: that is the videos, not the hour."""
    def posts(how: int, rate: float, content_type: ContentType, count: int) -> list[Reading]:
        return [Reading(how=how, epoch=NOW.timestamp() - 3 * 86_400, rate=rate, age_seconds=86_400,
                        content_type=content_type)] * count
    noon, evening = hour_of_week(1, 12), hour_of_week(1, 20)
    ratio = level_of(Platform.TIKTOK, ContentType.VIDEO) / level_of(Platform.TIKTOK, ContentType.IMAGE)
    readings = (posts(noon, 0.03, ContentType.IMAGE, 6) + posts(evening, 0.03, ContentType.IMAGE, 6)
                + posts(evening, 0.03 * ratio * 2, ContentType.VIDEO, 12))
    image = replace(request(readings, history=HistoricalPerformance()), content_type=ContentType.IMAGE)
    video = replace(image, content_type=ContentType.VIDEO)

    typed = LearnedStrategy()
    assert typed.estimate_for(image).expected[evening] == pytest.approx(
        typed.estimate_for(image).expected[noon], rel=0.05)
    assert typed.estimate_for(video).expected[evening] == pytest.approx(0.03 * ratio * 2, rel=0.15)
    pooled = LearnedStrategy(LearningSettings(content_type_sd=0.0))  # types as the population says
    assert pooled.estimate_for(image).expected[evening] > 1.3 * pooled.estimate_for(image).expected[noon]


def test_what_is_learnt_of_one_weekday_carries_to_the_others_and_less_to_weekends():
    strategy = LearnedStrategy()
    learnt = strategy.estimate_for(request(readings_at(hour_of_week(1, 23), 0.2, 30)))
    prior = strategy.estimate_for(request())
    gain = learnt.mean - prior.mean
    assert gain[hour_of_week(3, 23)] > gain[hour_of_week(5, 23)] > gain[hour_of_week(3, 8)] > 0


def test_old_readings_weigh_less():
    strategy = LearnedStrategy()
    how = hour_of_week(1, 23)
    fresh = strategy.estimate_for(request(readings_at(how, 0.2, 5, days_ago=1))).expected[how]
    stale = strategy.estimate_for(request(readings_at(how, 0.2, 5, days_ago=120))).expected[how]
    assert fresh > stale


def test_an_early_reading_is_projected_to_a_day_and_weighs_less():
    strategy = LearnedStrategy()
    how = hour_of_week(1, 23)
    learning = LearningSettings()
    reached = 1 - math.exp(-3600 / learning.accumulation_seconds)
    early = strategy.estimate_for(request(readings_at(how, 0.2 * reached, 10, age=3600))).expected[how]
    final = strategy.estimate_for(request(readings_at(how, 0.2, 10))).expected[how]
    assert early < final, "the same engagement, known less well"
    assert early > strategy.estimate_for(request()).expected[how], "but it says the same direction"


def test_engagement_is_normalised_by_audience_size():
    small = EngagementFigures(likes=90, comments=5, shares=5, audience_size=1_000)
    large = EngagementFigures(likes=900, comments=50, shares=50, audience_size=10_000)
    assert engagement_rate(small) == engagement_rate(large) == pytest.approx(0.1)
    assert engagement_rate(EngagementFigures(likes=3)) is None
    assert reading_from(5, 0.0, EngagementFigures(likes=3), 86_400, ContentType.VIDEO) is None


def test_no_count_at_all_is_no_reading_not_zero_engagement():
    # a YouTube video with its likes hidden and comments off: the platform gave views alone
    hidden = EngagementFigures(views=5_000, audience_size=20_000)
    assert engagement_rate(hidden) is None
    assert reading_from(5, 0.0, hidden, 86_400, ContentType.VIDEO) is None
    assert engagement_rate(EngagementFigures(likes=0, views=10, audience_size=100)) == 0.0, "a zero is a zero"


def test_a_growing_audience_does_not_make_its_later_hours_look_better():
    """The account posts at 16:00 lately, as its followers grew eightfold: its counts there
    are bigger, its rate is not, and neither is the estimate."""
    def readings(grows: bool) -> list[Reading]:
        found = []
        for week in range(6):
            followers = 1_000 * (2 ** (week // 2) if grows else 1)
            how = hour_of_week(1, 10) if week < 3 else hour_of_week(1, 16)
            figures = EngagementFigures(likes=50 * followers // 1_000, audience_size=followers)
            found.append(reading_from(how, NOW.timestamp() - (6 - week) * 7 * 86_400, figures, 86_400,
                                      ContentType.VIDEO))
        return found

    flat = LearnedStrategy().estimate_for(request(readings(False), history=HistoricalPerformance()))
    growing = LearnedStrategy().estimate_for(request(readings(True), history=HistoricalPerformance()))
    assert np.allclose(flat.mean, growing.mean)


def test_expected_engagement_matches_what_the_posts_earn_once_learnt():
    rng = np.random.default_rng(4)
    how = hour_of_week(2, 18)
    readings = [Reading(how=how, epoch=NOW.timestamp() - 86_400 * 2, rate=float(0.04 * math.exp(rng.normal(0, 0.3))),
                        age_seconds=86_400, content_type=ContentType.VIDEO) for _ in range(200)]
    observed_mean = float(np.mean([r.rate for r in readings]))
    expected = LearnedStrategy().estimate_for(request(readings)).expected[how]
    assert expected == pytest.approx(observed_mean, rel=0.1)


# -- exploration -----------------------------------------------------------------------------

def simulate(strategy: LearnedStrategy, truth, posts: int, hours=range(24)) -> list[int]:
    """Plan `posts` posts, one a day on a Tuesday-like day, learning from noise-free readings."""
    readings, chosen = [], []
    for n in range(posts):
        scores = strategy.scores(request(readings, seed=n))
        values = np.array([scores.tiers[0][hour_of_week(1, h)] for h in hours])
        if scores.mean is not None and scores.slack != math.inf:
            means = np.array([scores.mean[hour_of_week(1, h)] for h in hours])
            values = np.where(means >= means.max() - scores.slack, values, -np.inf)
        hour = list(hours)[int(np.argmax(values))]
        chosen.append(hour)
        readings.append(Reading(how=hour_of_week(1, hour), epoch=NOW.timestamp() - 86_400, rate=truth(hour),
                                age_seconds=86_400, content_type=ContentType.VIDEO))
    return chosen


def true_rate(hour: int) -> float:
    """The account's real best hour is 22:00, which its history never mentions."""
    return 0.02 + 0.08 * math.exp(-0.5 * ((hour - 22) / 1.5) ** 2)


@pytest.mark.parametrize("mode", [Exploration.UCB, Exploration.THOMPSON])
def test_a_new_account_does_not_lock_onto_its_first_guess(mode):
    strategy = LearnedStrategy(exploration=ExplorationSettings(mode=mode, budget=0.3))
    chosen = simulate(strategy, true_rate, 40)
    assert chosen[0] == 19, "it starts where the history points"
    assert chosen[-10:].count(22) + chosen[-10:].count(21) >= 8, chosen


def test_without_exploration_it_can_stay_with_the_first_guess():
    """What the exploration is for: greedy choices may never try the better hour."""
    greedy = LearnedStrategy(exploration=ExplorationSettings(mode=Exploration.GREEDY))
    chosen = simulate(greedy, true_rate, 40)
    exploring = simulate(LearnedStrategy(exploration=ExplorationSettings(budget=0.3)), true_rate, 40)
    assert sum(true_rate(h) for h in exploring) >= sum(true_rate(h) for h in chosen)


def test_the_exploration_budget_bounds_what_one_post_may_give_up():
    scores = LearnedStrategy(exploration=ExplorationSettings(budget=0.2, decay_readings=0)).scores(
        request(readings_at(hour_of_week(1, 19), 0.07, 8)))
    assert scores.slack == pytest.approx(-math.log(0.8))
    assert LearnedStrategy(exploration=ExplorationSettings(budget=0.0)).scores(request()).slack in (0.0, math.inf)
    with pytest.raises(ValueError):
        ExplorationSettings(budget=1.0)


def test_exploration_waits_for_the_first_readings():
    """Before any feedback an exploring post would only cost: nothing can be learnt from it yet."""
    fresh = LearnedStrategy().scores(request())
    assert fresh.slack == math.inf and (fresh.tiers[0] == fresh.expected).all()


def test_exploration_fades_as_the_readings_accumulate():
    """Early, finding a missed peak pays back over every later post; later it is mostly cost."""
    def exploring(strategy: LearnedStrategy, count: int) -> tuple[float, float]:
        scores = strategy.scores(request(readings_at(hour_of_week(1, 19), 0.07, count)))
        return scores.slack, float(np.max(scores.tiers[0] - scores.mean))  # budget, largest bonus

    fading = LearnedStrategy(exploration=ExplorationSettings(budget=0.4, decay_readings=10))
    (early_slack, early_bonus), (late_slack, late_bonus) = exploring(fading, 10), exploring(fading, 90)
    assert early_slack == pytest.approx(-math.log(1 - 0.4 / 2))
    assert late_slack == pytest.approx(-math.log(1 - 0.4 / 10))
    assert late_bonus < early_bonus / 3, "the posterior is tighter too, and the bonus scaled down"
    steady = LearnedStrategy(exploration=ExplorationSettings(budget=0.4, decay_readings=0))
    assert exploring(steady, 90)[0] == exploring(steady, 10)[0] == pytest.approx(-math.log(0.6))
    with pytest.raises(ValueError):
        ExplorationSettings(decay_readings=-1)


def test_posterior_draws_are_the_same_for_the_same_seed():
    strategy = LearnedStrategy(exploration=ExplorationSettings(mode=Exploration.THOMPSON))
    readings = readings_at(hour_of_week(1, 19), 0.07, 8)
    a, b = strategy.scores(request(readings, seed=7)), strategy.scores(request(readings, seed=7))
    c = strategy.scores(request(readings, seed=8))
    assert (a.tiers[0] == b.tiers[0]).all() and not (a.tiers[0] == c.tiers[0]).all()


def test_estimates_are_reused_while_the_readings_key_holds():
    strategy = LearnedStrategy()
    readings = readings_at(hour_of_week(1, 19), 0.07, 8)
    first = strategy.estimate_for(request(readings, key=("acct", 1)))
    assert strategy.estimate_for(request(readings, key=("acct", 1))) is first
    assert strategy.estimate_for(request(readings, key=("acct", 2))) is not first


def test_learned_schedule_ranks_by_expected_engagement_in_the_original_shape():
    schedule_input = ScheduleInput(platform="tiktok", content_type="video", audience_data=AUDIENCE,
                                   historical_performance=HISTORY)
    slots = learned_schedule(schedule_input, NOW, count=5)
    assert len(slots) == 5 and len({s.timestamp for s in slots}) == 5
    assert [s.expected_engagement for s in slots] == sorted((s.expected_engagement for s in slots), reverse=True)
    assert all(NOW <= s.timestamp <= NOW + timedelta(days=7) for s in slots)
    assert {s.platform for s in slots} == {Platform.TIKTOK}
