"""Expected engagement corrected by what the account's posts earned: from the readings a post
type can have (a story's last one is at 23 h), and with the account's level applied once."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest

from contracts import AudienceData, ContentType, HistoricalPerformance, Platform
from services.planner.domain import LearnedStrategy, Reading, ScoringRequest, hour_of_week

NOW = datetime(2026, 6, 1, 6, 0, tzinfo=timezone.utc)
AUDIENCE = AudienceData(timezone="UTC", activity_hours=[12, 18, 19, 20], peak_days=["tuesday"])
TUESDAY_19 = hour_of_week(1, 19)
STORY_LAST_READING = 23 * 3600.0  # the queue's last collection of a story, whose figures end at 24 h


def request(readings, content_type=ContentType.STORY) -> ScoringRequest:
    return ScoringRequest(platform=Platform.INSTAGRAM, content_type=content_type, audience=AUDIENCE,
                          audience_given=True, history=HistoricalPerformance(), now_epoch=NOW.timestamp(),
                          readings=tuple(readings))


def expected_at(readings, content_type=ContentType.STORY) -> float:
    return float(LearnedStrategy().estimate_for(request(readings, content_type)).expected[TUESDAY_19])


def viral_now_and_then(age_seconds: float, content_type=ContentType.STORY) -> list[Reading]:
    """Stories at one hour: nine in ten earn little, one in ten goes viral. The log-normal mean
    of the posterior (about half of what they earn on average) is what calibration corrects."""
    epoch = NOW.timestamp() - 3 * 86_400
    rates = [0.5 if n % 10 == 0 else 0.01 for n in range(100)]
    return [Reading(how=TUESDAY_19, epoch=epoch, rate=rate, age_seconds=age_seconds, content_type=content_type)
            for rate in rates]


def test_a_storys_last_reading_at_23_hours_calibrates_its_expectations():
    """The defect: only readings at 24 h or later counted, and a story has none."""
    readings = viral_now_and_then(STORY_LAST_READING)
    earned = float(np.mean([r.rate for r in readings]))

    assert expected_at(readings) == pytest.approx(earned, rel=0.15)
    # as a reading at the reference age would, up to the last hour's projection
    assert expected_at(readings) == pytest.approx(expected_at(viral_now_and_then(86_400.0)), rel=0.01)


def test_an_early_reading_does_not_calibrate():
    """At 1 h a post has a sixth of its day's engagement: the accumulation curve, not the
    account, would set most of the correction. The update projects it; calibration waits."""
    early = viral_now_and_then(3600.0)
    projected = float(np.mean([r.rate for r in early])) * (1 - math.exp(-4)) / (1 - math.exp(-1 / 6))

    assert expected_at(early) < 0.7 * projected, "the log-normal mean, uncorrected"


def test_what_was_expected_when_planned_does_not_apply_the_level_twice():
    """The defect: a new account's prior promised twice what its posts earned; the posterior
    learnt their level from the readings, and the calibration divided by the old promise
    again, expecting 0.6 of what they earn."""
    how = hour_of_week(2, 18)
    epoch = NOW.timestamp() - 3 * 86_400
    earned = [Reading(how=how, epoch=epoch, rate=0.04, age_seconds=86_400.0, content_type=ContentType.VIDEO)] * 30
    promised = [replace(r, expected=0.08) for r in earned]

    estimate = LearnedStrategy().estimate_for(request(promised, ContentType.VIDEO))

    assert estimate.expected[how] == pytest.approx(0.04, rel=0.1)
    assert estimate.expected[how] == pytest.approx(expected_for(earned, how), rel=1e-9)


def expected_for(readings, how) -> float:
    return float(LearnedStrategy().estimate_for(request(readings, ContentType.VIDEO)).expected[how])
