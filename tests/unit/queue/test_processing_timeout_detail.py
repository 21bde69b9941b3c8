"""A target the platform keeps processing past its budget fails saying what the platform last
reported of it: the state of its last answered check, kept on the target while it processes."""

import random
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from contracts import AlertKind, ErrorClass, ObservedState, PublishError, RemoteHandle, StatusObserved
from services.queue.domain import (
    RetryPolicy,
    StatusCadence,
    TargetState,
    TargetStatus,
    on_due,
    on_status_observed,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
POLICY = RetryPolicy(base_seconds=2, cap_seconds=600, max_attempts=3, max_elapsed_seconds=3600)
CADENCE = StatusCadence(first_seconds=1, max_seconds=60)
HANDLE = RemoteHandle(kind="tiktok.publish_id", id="v_pub_url~1").to_wire()


def processing(**kw) -> TargetState:
    kw.setdefault("scheduled_time", NOW - timedelta(minutes=5))
    return TargetState(target_id=uuid.uuid4(), status=TargetStatus.PROCESSING, version=3, attempt=1,
                       due_at=NOW, remote_handle=HANDLE, processing_since=NOW - timedelta(minutes=4), **kw)


def observe(state, detail=None, *, error=None, at=NOW, attempt=None, observed_state=ObservedState.PROCESSING):
    event = StatusObserved(message_id=uuid.uuid4(), target_id=state.target_id, attempt=attempt or state.attempt,
                           state=observed_state, detail=detail, error=error, observed_at=at)
    return on_status_observed(state, event, at, policy=POLICY, cadence=CADENCE, rng=random.Random(1))


def time_out(state):
    """Checks asked, until the budget from its acceptance has run out."""
    late = state.processing_since + timedelta(seconds=POLICY.max_elapsed_seconds + 1)
    return on_due(state, late, lease_seconds=600, cadence=CADENCE, policy=POLICY)


def test_a_still_processing_answer_is_kept_on_the_target_as_pending_not_failed():
    state = processing(status_checks=2)
    change = observe(state, "PROCESSING_DOWNLOAD")
    assert change.state.status is TargetStatus.PROCESSING and change.emit is None and change.alert is None
    assert change.state.last_error == {
        "errorClass": "retryable", "code": "still_processing", "pending": True,
        "message": "PROCESSING_DOWNLOAD", "attempt": 1, "observedAt": NOW.isoformat()}
    assert change.attempt_outcome is None, "no attempt is logged for a look"


def test_the_timeout_says_what_the_platform_last_reported():
    state = processing(status_checks=1)
    for i, detail in enumerate(["PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD"]):
        state = observe(state, detail, at=NOW + timedelta(minutes=i)).state
        state = on_due(state, NOW + timedelta(minutes=i, seconds=30), lease_seconds=600, cadence=CADENCE,
                       policy=POLICY).state  # the next check asked
    change = time_out(state)
    assert change.state.status is TargetStatus.FAILED and change.alert is AlertKind.PUBLISH_FAILED
    error = change.error
    assert error["code"] == "processing_timeout" and error["errorClass"] == "permanent"
    assert error["lastStatus"] == "PROCESSING_DOWNLOAD", "the last answer, not the first"
    assert error["lastStatusAt"] == (NOW + timedelta(minutes=1)).isoformat()
    assert error["message"] == ("still processing on the platform after 3 checks "
                                "(last reported: PROCESSING_DOWNLOAD)")
    assert change.state.last_error == error, "the target says it too"


def test_a_status_the_platform_would_not_tell_is_what_the_timeout_reports():
    # the poller's answer to a read refused for good (services/publishers/status_reads.py)
    state = observe(processing(), "status_unreadable: 403: the token lacks video.list").state
    error = time_out(state).error
    assert error["lastStatus"] == "status_unreadable: 403: the token lacks video.list"
    assert "(last reported: status_unreadable: 403: the token lacks video.list)" in error["message"]


def test_an_answer_without_detail_reports_its_error_or_its_state():
    failed_read = PublishError(error_class=ErrorClass.RETRYABLE, code="http_503", message="unavailable")
    assert time_out(observe(processing(), error=failed_read).state).error["lastStatus"] == "http_503: unavailable"
    assert time_out(observe(processing()).state).error["lastStatus"] == "processing"


def test_without_an_answered_check_the_timeout_says_so():
    # accepted after a retry: the last error is that attempt's failure, not a status of this one
    earlier = {"errorClass": "retryable", "code": "internal_error", "message": "boom"}
    error = time_out(processing(status_checks=4, last_error=earlier)).error
    assert error["lastStatus"] is None and error["lastStatusAt"] is None
    assert error["message"] == "still processing on the platform after 4 checks (no check was answered)"
    # what an earlier attempt's processing said is not this attempt's
    stale = observe(processing(), "in moderation").state
    assert time_out(replace(stale, attempt=2)).error["lastStatus"] is None


def test_a_long_platform_message_is_cut_to_keep_the_timeout_readable():
    error = time_out(observe(processing(), "x" * 5000).state).error
    assert len(error["lastStatus"]) == 500 and len(error["message"]) < 600


def test_what_it_said_while_processing_goes_once_it_is_posted_or_fails():
    state = observe(processing(), "in moderation: no public id yet").state
    posted = observe(state, observed_state=ObservedState.PUBLISHED).state
    assert posted.status is TargetStatus.POSTED and posted.last_error is None
    refused = PublishError(error_class=ErrorClass.PERMANENT, code="spam_risk", message="refused")
    failed = observe(state, error=refused, observed_state=ObservedState.FAILED).state
    assert failed.status is TargetStatus.FAILED and failed.last_error["code"] == "spam_risk"


def test_an_earlier_error_stays_on_a_target_posted_without_a_status_answer():
    earlier = {"errorClass": "retryable", "code": "internal_error", "message": "boom"}
    posted = observe(processing(last_error=earlier), observed_state=ObservedState.PUBLISHED).state
    assert posted.last_error == earlier, "as before: only a status it was told is dropped"
