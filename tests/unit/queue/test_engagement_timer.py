"""A posted target's engagement collections, on its one timer: every move, and the ones refused."""

import random
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from contracts import (
    ErrorClass,
    ObservedState,
    PublishError,
    PublishOutcome,
    PublishResult,
    RemoteHandle,
    StatusObserved,
)
from engagement_reads import AGES, CADENCE, FIGURES, HANDLE, NOW, observed, posted
from services.queue.domain import (
    Change,
    Emit,
    EngagementCadence,
    RetryPolicy,
    StatusCadence,
    TargetState,
    TargetStatus,
    collection_ages,
    on_engagement_due,
    on_engagement_observed,
    on_publish_result,
    on_status_observed,
    with_engagement_timer,
)

def test_posting_sets_the_timer_to_the_first_collection():
    state = TargetState(target_id=uuid.uuid4(), status=TargetStatus.PROCESSING, version=2, attempt=1,
                        due_at=NOW, remote_handle=HANDLE)
    status = StatusObserved(message_id=uuid.uuid4(), target_id=state.target_id, attempt=1,
                            state=ObservedState.PUBLISHED, url="https://x/1", observed_at=NOW)
    change = on_status_observed(state, status, NOW, policy=RetryPolicy(), cadence=StatusCadence(),
                                rng=random.Random(1))
    timed = with_engagement_timer(change, CADENCE)
    assert timed.state.status is TargetStatus.POSTED
    assert timed.state.due_at == NOW + timedelta(hours=1) and timed.state.engagement_checks == 0
    assert timed.state.version == change.state.version, "the same change, with its timer"


def test_posted_straight_from_the_publisher_gets_the_timer_too():
    state = TargetState(target_id=uuid.uuid4(), status=TargetStatus.PUBLISHING, version=2, attempt=1, due_at=NOW)
    result = PublishResult(message_id=uuid.uuid4(), target_id=state.target_id, attempt=1,
                           outcome=PublishOutcome.PUBLISHED, url="https://x/1",
                           remote_handle=RemoteHandle(kind="k", id="1"), occurred_at=NOW - timedelta(minutes=5))
    change = on_publish_result(state, result, NOW, policy=RetryPolicy(), cadence=StatusCadence(),
                               rng=random.Random(1))
    assert with_engagement_timer(change, CADENCE).state.due_at == NOW - timedelta(minutes=5) + timedelta(hours=1)


def test_without_collection_ages_a_posted_target_has_no_timer():
    state = replace(posted(), due_at=None)
    assert with_engagement_timer(Change(state), EngagementCadence(())).state.due_at is None


def test_other_changes_are_left_alone():
    state = TargetState(target_id=uuid.uuid4(), status=TargetStatus.RETRY_WAIT, version=2, attempt=1, due_at=NOW)
    change = Change(state)
    assert with_engagement_timer(change, CADENCE) is change


def test_a_due_collection_asks_for_engagement_under_a_lease():
    state = posted()
    change = on_engagement_due(state, NOW + timedelta(hours=1), CADENCE)
    assert change.emit is Emit.ENGAGEMENT
    assert change.state.due_at == NOW + timedelta(hours=1, seconds=120)
    assert change.state.engagement_checks == 0, "done only once the figures are back"
    assert change.state.version == state.version + 1


def test_a_lost_ask_is_asked_again_when_its_lease_runs_out():
    state = posted()
    first = on_engagement_due(state, NOW + timedelta(hours=1), CADENCE)
    again = on_engagement_due(first.state, first.state.due_at, CADENCE)
    assert again.emit is Emit.ENGAGEMENT and again.state.version == first.state.version + 1


def test_figures_move_the_timer_to_the_next_age_and_go_to_the_planner():
    state = on_engagement_due(posted(), NOW + timedelta(hours=1), CADENCE).state
    change = on_engagement_observed(state, observed(state, 3600.0, FIGURES), NOW + timedelta(hours=1), CADENCE)
    assert change.emit is Emit.ENGAGEMENT_OBSERVED
    assert change.state.engagement_checks == 1
    assert change.state.due_at == NOW + timedelta(hours=24)


def test_the_last_figures_stop_the_timer():
    state = on_engagement_due(posted(checks=1), NOW + timedelta(hours=24), CADENCE).state
    change = on_engagement_observed(state, observed(state, 86_400.0, FIGURES), NOW, CADENCE)
    assert change.emit is Emit.ENGAGEMENT_OBSERVED
    assert change.state.engagement_checks == 2 and change.state.due_at is None
    assert on_engagement_due(change.state, NOW + timedelta(days=3), CADENCE).state.due_at is None


def test_figures_for_another_age_change_nothing():
    state = posted(checks=1)
    assert on_engagement_observed(state, observed(state, 3600.0, FIGURES), NOW, CADENCE) is None, \
        "a late answer to the first ask"


@pytest.mark.parametrize("status", [TargetStatus.PROCESSING, TargetStatus.FAILED])
def test_only_posted_targets_collect(status):
    state = replace(posted(), status=status)
    assert on_engagement_observed(state, observed(state, 3600.0, FIGURES), NOW, CADENCE) is None
    assert on_engagement_due(state, NOW + timedelta(hours=2), CADENCE) is None


def test_a_read_that_failed_for_now_is_retried():
    state = posted()
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="http_503", message="down")
    change = on_engagement_observed(state, observed(state, 3600.0, error=error), NOW + timedelta(hours=1), CADENCE)
    assert change.emit is None and change.state.engagement_checks == 0
    assert change.state.due_at == NOW + timedelta(hours=1, seconds=60)


def test_a_read_that_keeps_failing_is_retried_further_apart_and_as_the_platform_asks():
    state, at, reads = posted(checks=1), NOW + timedelta(hours=24), 0
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="video_not_listed", message="gone")
    while state.engagement_checks == 1:  # a post deleted from the platform: never listed again
        change = on_engagement_due(state, at, CADENCE)
        if change.emit is None:  # given up: too late to compare
            state = change.state
            break
        reads += 1
        state = on_engagement_observed(change.state, observed(state, 86_400.0, error=error), at, CADENCE).state
        at = state.due_at
    assert state.engagement_checks == 2 and 8 <= reads <= 14, reads
    limited = PublishError(error_class=ErrorClass.RATE_LIMITED, code="429", message="slow", retry_after_sec=900)
    change = on_engagement_observed(posted(), observed(posted(), 3600.0, error=limited), NOW + timedelta(hours=1),
                                    CADENCE)
    assert change.state.due_at == NOW + timedelta(hours=1, seconds=900)


def test_a_read_that_will_never_work_skips_to_the_next_age():
    state = posted()
    error = PublishError(error_class=ErrorClass.PERMANENT, code="no_public_post", message="private")
    change = on_engagement_observed(state, observed(state, 3600.0, error=error), NOW + timedelta(hours=1), CADENCE)
    assert change.emit is None
    assert change.state.engagement_checks == 1 and change.state.due_at == NOW + timedelta(hours=24)


def test_a_collection_too_late_to_compare_is_skipped():
    state = posted()
    change = on_engagement_due(state, NOW + timedelta(hours=3), CADENCE)  # 1 h collection, 2 h late
    assert change.emit is None
    assert change.state.engagement_checks == 1 and change.state.due_at == NOW + timedelta(hours=24)


def test_collection_ages_must_increase():
    with pytest.raises(ValueError):
        EngagementCadence((86_400.0, 3600.0))


def test_a_post_whose_figures_run_out_is_read_for_the_last_time_before_they_do():
    # an Instagram story: its insights are given for 24 hours, so the 24 h reading would find none
    assert CADENCE.ages_for(NOW, NOW + timedelta(hours=24)) == (3600.0, 23 * 3600.0)
    assert CADENCE.ages_for(NOW, NOW + timedelta(hours=48)) == AGES, "long enough for every age"
    assert CADENCE.ages_for(NOW, None) == AGES
    assert CADENCE.ages_for(NOW, NOW + timedelta(minutes=40)) == (1200.0,), "half its life, at least"
    story = replace(posted(checks=1), remote_handle=RemoteHandle(
        kind="instagram.media", id="1790", figures_until=NOW + timedelta(hours=24)).to_wire())
    assert collection_ages(story, CADENCE) == (3600.0, 23 * 3600.0)
    at = NOW + timedelta(hours=23)
    asked = on_engagement_due(replace(story, due_at=at), at, CADENCE)
    assert asked is not None and asked.emit is Emit.ENGAGEMENT
    done = on_engagement_observed(asked.state, observed(story, 23 * 3600.0, FIGURES), at, CADENCE)
    assert done is not None and done.emit is Emit.ENGAGEMENT_OBSERVED
    assert (done.state.engagement_checks, done.state.due_at) == (2, None), "the last collection"
    # a story posted before its handle said so keeps the plain ages
    assert on_engagement_due(replace(posted(checks=1), due_at=at), at, CADENCE).emit is None
