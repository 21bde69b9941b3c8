"""Operator commands: what they may change, and what they say when it is too late."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from contracts import FOUND_HANDLE_KIND, NEEDS_REVIEW
from services.queue.domain import (
    Refused,
    TargetState,
    TargetStatus,
    awaited_review,
    cancel,
    found,
    reschedule,
    retry,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=3)


def target(status: TargetStatus, **kw) -> TargetState:
    return TargetState(target_id=uuid.uuid4(), status=status, version=5, attempt=2, due_at=NOW,
                       scheduled_time=NOW, **kw)


@pytest.mark.parametrize("status", [TargetStatus.PENDING, TargetStatus.RETRY_WAIT, TargetStatus.DEFERRED,
                                    TargetStatus.FAILED])
def test_cancel_before_dispatch_stops_the_timer(status):
    change = cancel(target(status))
    assert change.state.status is TargetStatus.CANCELLED and change.state.due_at is None
    assert change.state.version == 6


@pytest.mark.parametrize(("status", "says"), [
    (TargetStatus.PUBLISHING, "already dispatched"),
    (TargetStatus.PROCESSING, "already accepted"),
    (TargetStatus.POSTED, "already posted at https://x/1"),
    (TargetStatus.CANCELLED, "already cancelled"),
])
def test_cancel_after_dispatch_says_what_happened_instead(status, says):
    refused = cancel(target(status, url="https://x/1"))
    assert isinstance(refused, Refused) and says in refused.reason


def test_reschedule_moves_the_slot_and_the_budget():
    change = reschedule(target(TargetStatus.PENDING, failures=2), LATER)
    assert change.state.due_at == LATER and change.state.scheduled_time == LATER
    assert change.state.status is TargetStatus.PENDING and change.state.failures == 0


def test_reschedule_arms_a_failed_target_again():
    assert reschedule(target(TargetStatus.FAILED), LATER).state.status is TargetStatus.PENDING


@pytest.mark.parametrize("status", [TargetStatus.PUBLISHING, TargetStatus.CANCELLED, TargetStatus.POSTED])
def test_reschedule_after_dispatch_or_cancel_is_refused(status):
    assert isinstance(reschedule(target(status), LATER), Refused)


def test_retry_publishes_a_failed_target_now_with_a_fresh_budget():
    change = retry(target(TargetStatus.FAILED, failures=6, last_error={"code": "x"}), LATER)
    assert change.state.status is TargetStatus.PENDING and change.state.due_at == LATER
    assert change.state.failures == 0


def test_retry_of_a_target_not_due_yet_points_to_reschedule():
    refused = retry(target(TargetStatus.PENDING), NOW)
    assert isinstance(refused, Refused) and "reschedule" in refused.reason


def test_only_a_target_failed_for_review_awaited_one():
    review = {"error_class": "permanent", "code": NEEDS_REVIEW, "message": "check the account"}
    assert awaited_review(target(TargetStatus.FAILED, last_error=review))
    assert not awaited_review(target(TargetStatus.FAILED, last_error={**review, "code": "2207026"}))
    assert not awaited_review(target(TargetStatus.FAILED))
    assert not awaited_review(target(TargetStatus.RETRY_WAIT, last_error=review)), "not settled by anyone yet"


def test_found_marks_a_target_for_review_posted_at_the_address_given():
    review = {"error_class": "permanent", "code": NEEDS_REVIEW, "message": "check the account"}
    went_out = NOW - timedelta(hours=3)
    change = found(target(TargetStatus.FAILED, last_error=review), "https://www.tiktok.com/@a/video/1", went_out,
                   by_address=True)
    assert change.state.status is TargetStatus.POSTED and change.state.url == "https://www.tiktok.com/@a/video/1"
    assert change.state.published_at == went_out and change.state.due_at is None and change.attempt_outcome == "found"
    assert change.state.remote_handle == {"kind": FOUND_HANDLE_KIND, "id": "https://www.tiktok.com/@a/video/1"}
    elsewhere = found(target(TargetStatus.FAILED, last_error=review), "https://x/p/1", went_out, by_address=False)
    assert elsewhere.state.status is TargetStatus.POSTED and elsewhere.state.remote_handle is None
    refused = found(target(TargetStatus.FAILED, last_error={**review, "code": "2207026"}), "https://x/1", NOW,
                    by_address=True)
    assert isinstance(refused, Refused) and "did not fail for review" in refused.reason
    refused = found(target(TargetStatus.PUBLISHING), "https://x/1", NOW, by_address=True)
    assert isinstance(refused, Refused) and "already dispatched" in refused.reason