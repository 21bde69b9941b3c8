"""The target state machine: every move, and the moves that must not happen."""

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from dataclasses import replace

from contracts import (
    NEEDS_REVIEW,
    AlertKind,
    ErrorClass,
    ObservedState,
    PublishError,
    PublishOutcome,
    PublishResult,
    RemoteHandle,
    StatusObserved,
)
from services.queue.domain import (
    Emit,
    RetryPolicy,
    StatusCadence,
    TargetState,
    TargetStatus,
    on_due,
    on_publish_result,
    on_status_observed,
    post_status,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
POLICY = RetryPolicy(base_seconds=2, cap_seconds=600, max_attempts=3)
CADENCE = StatusCadence(first_seconds=1, max_seconds=60)
HANDLE = RemoteHandle(kind="tiktok.publish_id", id="v_pub_url~1")


def target(status=TargetStatus.PENDING, attempt=0, **kw) -> TargetState:
    kw.setdefault("scheduled_time", NOW - timedelta(minutes=5))
    return TargetState(target_id=uuid.uuid4(), status=status, version=3, attempt=attempt, due_at=NOW, **kw)


def due(state, now=NOW):
    return on_due(state, now, lease_seconds=600, cadence=CADENCE, policy=POLICY)


def result(state, outcome, attempt=None, error=None, url=None, handle=HANDLE) -> PublishResult:
    return PublishResult(
        message_id=uuid.uuid4(), target_id=state.target_id, attempt=attempt or state.attempt,
        outcome=outcome, remote_handle=handle, url=url, error=error, occurred_at=NOW,
    )


def apply(state, event):
    if isinstance(event, PublishResult):
        return on_publish_result(state, event, NOW, policy=POLICY, cadence=CADENCE, rng=random.Random(1))
    return on_status_observed(state, event, NOW, policy=POLICY, cadence=CADENCE, rng=random.Random(1))


@pytest.mark.parametrize("status", [TargetStatus.PENDING, TargetStatus.RETRY_WAIT, TargetStatus.DEFERRED])
def test_due_target_starts_an_attempt_under_a_lease(status):
    change = due(target(status, attempt=1))
    assert change.emit is Emit.PUBLISH
    assert change.state.status is TargetStatus.PUBLISHING
    assert change.state.attempt == 2
    assert change.state.version == 4
    assert change.state.due_at == NOW + timedelta(seconds=600)


def test_expired_lease_is_driven_again_with_the_stored_handle():
    state = target(TargetStatus.PUBLISHING, attempt=1, remote_handle=HANDLE.to_wire())
    change = due(state)
    assert change.emit is Emit.PUBLISH and change.state.attempt == 2
    assert change.state.remote_handle == HANDLE.to_wire()


def test_processing_target_asks_for_status_once_until_answered():
    state = target(TargetStatus.PROCESSING, attempt=1, status_checks=2, remote_handle=HANDLE.to_wire())
    change = due(state)
    assert change.emit is Emit.STATUS
    assert change.state.status_checks == 3
    # not due again until the answer comes back, or the check's lease runs out
    assert change.state.due_at == NOW + timedelta(seconds=CADENCE.lease_seconds)


@pytest.mark.parametrize("status", [TargetStatus.POSTED, TargetStatus.FAILED, TargetStatus.CANCELLED])
def test_terminal_targets_never_fall_due(status):
    assert due(target(status)) is None


def test_accepted_moves_to_processing_with_the_handle_and_a_first_check():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    change = apply(state, result(state, PublishOutcome.ACCEPTED))
    assert change.state.status is TargetStatus.PROCESSING
    assert change.state.remote_handle == HANDLE.to_wire()
    assert change.state.due_at == NOW + timedelta(seconds=1)


def test_published_is_posted_with_url_and_no_timer():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    change = apply(state, result(state, PublishOutcome.PUBLISHED, url="https://x/1"))
    assert change.state.status is TargetStatus.POSTED
    assert change.state.url == "https://x/1" and change.state.due_at is None


def test_retryable_failure_waits_with_jitter_within_the_backoff_ceiling():
    state = target(TargetStatus.PUBLISHING, attempt=2)
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="internal_error", message="boom")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.RETRY_WAIT
    assert NOW <= change.state.due_at <= NOW + timedelta(seconds=4)
    assert change.state.last_error["code"] == "internal_error"


def test_rate_limited_failure_waits_at_least_retry_after():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    error = PublishError(error_class=ErrorClass.RATE_LIMITED, code="rate_limit_exceeded",
                         message="slow down", retry_after_sec=60)
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.due_at >= NOW + timedelta(seconds=60)


def test_quota_failure_is_deferred_not_failed():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    error = PublishError(error_class=ErrorClass.QUOTA, code="quotaExceeded", message="q",
                         retry_after_sec=3600)
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.DEFERRED
    assert change.state.due_at == NOW + timedelta(seconds=3600)


def test_permanent_failure_fails_at_once():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    error = PublishError(error_class=ErrorClass.PERMANENT, code="invalid_param", message="bad")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.FAILED and change.state.due_at is None


def test_retryable_failure_fails_when_attempts_are_spent_and_alerts_once():
    state = target(TargetStatus.PUBLISHING, attempt=7, failures=POLICY.max_attempts - 1)
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="internal_error", message="boom")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.FAILED and change.alert is AlertKind.ATTEMPTS_EXHAUSTED
    assert change.state.last_error["code"] == "internal_error"


def test_permanent_failure_alerts_with_the_platforms_reason():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    error = PublishError(error_class=ErrorClass.PERMANENT, code="invalid_param", message="bad")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.alert is AlertKind.PUBLISH_FAILED and change.error["code"] == "invalid_param"


def test_retries_count_failures_not_dispatches():
    # many dispatches (quota deferrals, rate limits) must not spend the retry budget
    state = target(TargetStatus.PUBLISHING, attempt=20, failures=0)
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="internal_error", message="boom")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.RETRY_WAIT and change.state.failures == 1


def test_rate_limits_do_not_spend_the_attempt_budget():
    state = target(TargetStatus.PUBLISHING, attempt=3, failures=POLICY.max_attempts - 1)
    error = PublishError(error_class=ErrorClass.RATE_LIMITED, code="rate_limit_exceeded", message="x",
                         retry_after_sec=60)
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.RETRY_WAIT and change.state.failures == POLICY.max_attempts - 1


def test_a_platform_still_processing_spends_no_attempt_and_its_wait_does_not_grow():
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="container_not_ready", message="x",
                         retry_after_sec=60, pending=True)
    for attempt in (1, 12):
        state = target(TargetStatus.PUBLISHING, attempt=attempt, failures=POLICY.max_attempts - 1)
        change = apply(state, result(state, PublishOutcome.FAILED, error=error))
        assert change.state.status is TargetStatus.RETRY_WAIT
        assert change.state.failures == POLICY.max_attempts - 1, "no attempt spent"
        assert NOW + timedelta(seconds=60) <= change.state.due_at <= NOW + timedelta(seconds=60 + POLICY.base_seconds)
        assert change.state.last_error["code"] == "container_not_ready" and change.alert is None
    late = target(TargetStatus.PUBLISHING, attempt=30,
                  scheduled_time=NOW - timedelta(seconds=POLICY.max_elapsed_seconds - 30))
    change = apply(late, result(late, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.FAILED and change.alert is AlertKind.ATTEMPTS_EXHAUSTED
    # the same error without the flag (from a publisher that predates it) is an ordinary failure
    plain = target(TargetStatus.PUBLISHING, attempt=1)
    ordinary = error.model_copy(update={"pending": None})
    assert apply(plain, result(plain, PublishOutcome.FAILED, error=ordinary)).state.failures == 1


def test_a_retry_past_the_time_budget_fails_instead():
    late = target(TargetStatus.PUBLISHING, attempt=1,
                  scheduled_time=NOW - timedelta(seconds=POLICY.max_elapsed_seconds - 30))
    error = PublishError(error_class=ErrorClass.RATE_LIMITED, code="rate_limit_exceeded", message="x",
                         retry_after_sec=60)
    change = apply(late, result(late, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.FAILED and change.alert is AlertKind.ATTEMPTS_EXHAUSTED


def test_quota_waits_do_not_spend_attempts_and_alert_once_when_long():
    state = target(TargetStatus.PUBLISHING, attempt=9, failures=POLICY.max_attempts - 1,
                   deferred_since=NOW - timedelta(seconds=POLICY.quota_alert_after_seconds + 1))
    error = PublishError(error_class=ErrorClass.QUOTA, code="quotaExceeded", message="q", retry_after_sec=60)
    first = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert first.state.status is TargetStatus.DEFERRED and first.alert is AlertKind.QUOTA_BLOCKED
    assert first.state.deferred_since == state.deferred_since and first.state.quota_alerted
    again = replace(first.state, status=TargetStatus.PUBLISHING, attempt=10)
    second = apply(again, result(again, PublishOutcome.FAILED, error=error))
    assert second.state.status is TargetStatus.DEFERRED and second.alert is None


def test_first_quota_wait_starts_the_clock_without_an_alert():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    error = PublishError(error_class=ErrorClass.QUOTA, code="quotaExceeded", message="q")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.deferred_since == NOW and change.alert is None
    assert change.state.due_at == NOW + timedelta(seconds=POLICY.quota_default_seconds)


def test_auth_failure_waits_for_a_reconnect_within_the_budget():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    error = PublishError(error_class=ErrorClass.AUTH, code="reconnect_needed", message="gone")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.DEFERRED
    assert change.state.due_at == NOW + timedelta(seconds=POLICY.reconnect_wait_seconds)
    old = target(TargetStatus.PUBLISHING, attempt=1, scheduled_time=NOW - timedelta(seconds=POLICY.max_elapsed_seconds))
    assert apply(old, result(old, PublishOutcome.FAILED, error=error)).state.status is TargetStatus.FAILED


def test_expired_lease_counts_as_a_failure_and_gives_up_when_spent():
    state = target(TargetStatus.PUBLISHING, attempt=4, failures=1, remote_handle=HANDLE.to_wire())
    change = due(state)
    assert change.emit is Emit.PUBLISH and change.state.failures == 2
    assert change.attempt_outcome == "lease_expired"
    spent = target(TargetStatus.PUBLISHING, attempt=9, failures=POLICY.max_attempts - 1)
    change = due(spent)
    assert change.state.status is TargetStatus.FAILED and change.emit is None
    assert change.alert is AlertKind.ATTEMPTS_EXHAUSTED and change.error["code"] == "lease_expired"


def test_a_lease_whose_request_may_still_be_in_the_outbox_is_renewed_not_run_out():
    # the lease began at NOW - 600 s; the outbox's oldest message is older: the broker or the
    # relay is down, and this request may never have left
    state = target(TargetStatus.PUBLISHING, attempt=2, failures=1, remote_handle=HANDLE.to_wire())
    began = NOW - timedelta(seconds=600)
    stuck = on_due(state, NOW, lease_seconds=600, cadence=CADENCE, policy=POLICY,
                   unsent_since=began - timedelta(seconds=1))
    assert stuck.emit is None and stuck.attempt_outcome is None, "nothing sent again, no attempt spent"
    assert (stuck.state.status, stuck.state.attempt, stuck.state.failures) == (TargetStatus.PUBLISHING, 2, 1)
    assert stuck.state.due_at == NOW + timedelta(seconds=600)
    # the outbox moved past it (sent) or is empty: the lease has run out as before
    for unsent in (began + timedelta(minutes=1), None):
        change = on_due(state, NOW, lease_seconds=600, cadence=CADENCE, policy=POLICY, unsent_since=unsent)
        assert change.emit is Emit.PUBLISH and change.state.failures == 2
    # the platform's time budget still bounds it
    late = replace(state, scheduled_time=NOW - timedelta(seconds=POLICY.max_elapsed_seconds + 1))
    change = on_due(late, NOW, lease_seconds=600, cadence=CADENCE, policy=POLICY, unsent_since=began - timedelta(hours=1))
    assert change.state.status is TargetStatus.FAILED


def test_processing_past_the_budget_fails_instead_of_checking_forever():
    state = target(TargetStatus.PROCESSING, attempt=1, remote_handle=HANDLE.to_wire(),
                   scheduled_time=NOW - timedelta(seconds=POLICY.max_elapsed_seconds + 1))
    change = due(state)
    assert change.state.status is TargetStatus.FAILED and change.error["code"] == "processing_timeout"
    assert change.alert is AlertKind.PUBLISH_FAILED


def test_late_success_after_giving_up_is_still_the_post_on_the_platform():
    state = target(TargetStatus.FAILED, attempt=3)
    change = apply(state, result(state, PublishOutcome.PUBLISHED, attempt=2, url="https://x/late"))
    assert change.state.status is TargetStatus.POSTED and change.state.url == "https://x/late"


def test_failure_of_an_old_attempt_changes_nothing():
    state = target(TargetStatus.PUBLISHING, attempt=3)
    error = PublishError(error_class=ErrorClass.PERMANENT, code="x", message="late")
    assert apply(state, result(state, PublishOutcome.FAILED, attempt=2, error=error)) is None


def test_late_success_of_an_old_attempt_is_kept():
    state = target(TargetStatus.RETRY_WAIT, attempt=2)
    change = apply(state, result(state, PublishOutcome.ACCEPTED, attempt=1))
    assert change.state.status is TargetStatus.PROCESSING


@pytest.mark.parametrize("status", [TargetStatus.POSTED, TargetStatus.PROCESSING])
def test_results_never_move_a_target_backwards(status):
    state = target(status, attempt=1)
    assert apply(state, result(state, PublishOutcome.ACCEPTED)) is None


def test_a_post_made_after_an_operator_cancelled_its_target_is_kept_where_it_is():
    # cancelled while it waited to retry, the earlier attempt's publisher was still at work
    state = target(TargetStatus.CANCELLED, attempt=2)
    change = apply(state, result(state, PublishOutcome.PUBLISHED, attempt=2, url="https://x/made"))
    assert change.state.status is TargetStatus.POSTED and change.state.url == "https://x/made"
    error = PublishError(error_class=ErrorClass.PERMANENT, code="x", message="late")
    assert apply(state, result(state, PublishOutcome.FAILED, error=error)) is None, "a late failure changes nothing"


def test_accepted_without_a_handle_goes_to_review_instead_of_being_followed_by_nothing():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    change = apply(state, result(state, PublishOutcome.ACCEPTED, handle=None))
    assert change.state.status is TargetStatus.FAILED and change.error["code"] == NEEDS_REVIEW
    assert change.alert is AlertKind.PUBLISH_FAILED and change.emit is None
    cancelled = target(TargetStatus.CANCELLED, attempt=1)
    assert apply(cancelled, result(cancelled, PublishOutcome.ACCEPTED, handle=None)) is None, "a late one: no alarm"


def test_processing_accepted_late_after_a_quota_wait_gets_the_budget_from_its_acceptance():
    # deferred on a quota past its time budget (quota waits are not bounded by it), then accepted
    state = target(TargetStatus.PUBLISHING, attempt=2,
                   scheduled_time=NOW - timedelta(seconds=POLICY.max_elapsed_seconds + 3600))
    accepted = apply(state, result(state, PublishOutcome.ACCEPTED))
    assert accepted.state.status is TargetStatus.PROCESSING and accepted.state.processing_since == NOW
    check = due(accepted.state, NOW + timedelta(seconds=1))
    assert check.emit is Emit.STATUS, "checked, not failed before its first look"
    late = due(accepted.state, NOW + timedelta(seconds=POLICY.max_elapsed_seconds + 1))
    assert late.state.status is TargetStatus.FAILED and late.error["code"] == "processing_timeout"


def test_a_quota_wait_known_to_pass_the_threshold_alerts_when_it_starts():
    state = target(TargetStatus.PUBLISHING, attempt=1)
    long_wait = POLICY.quota_alert_after_seconds + 60
    error = PublishError(error_class=ErrorClass.QUOTA, code="q", message="q", retry_after_sec=long_wait)
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.DEFERRED and change.alert is AlertKind.QUOTA_BLOCKED


def test_another_outcome_ends_the_quota_wait_so_the_next_one_counts_afresh():
    state = target(TargetStatus.PUBLISHING, attempt=3, quota_alerted=True,
                   deferred_since=NOW - timedelta(seconds=POLICY.quota_alert_after_seconds + 1))
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="5xx", message="down")
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.RETRY_WAIT
    assert change.state.deferred_since is None and not change.state.quota_alerted


def test_absurd_attempts_and_retry_afters_wait_long_but_do_not_overflow():
    state = target(TargetStatus.PUBLISHING, attempt=5000, scheduled_time=NOW)
    error = PublishError(error_class=ErrorClass.RATE_LIMITED, code="429", message="slow", retry_after_sec=1e15)
    change = apply(state, result(state, PublishOutcome.FAILED, error=error))
    assert change.state.status is TargetStatus.FAILED, "past the time budget"
    quota = PublishError(error_class=ErrorClass.QUOTA, code="q", message="q", retry_after_sec=1e15)
    change = apply(state, result(state, PublishOutcome.FAILED, error=quota))
    assert change.state.status is TargetStatus.DEFERRED and change.state.due_at < NOW + timedelta(days=31)


def observed(state, observed_state, error=None, attempt=None, url=None):
    return StatusObserved(message_id=uuid.uuid4(), target_id=state.target_id,
                          attempt=attempt or state.attempt, state=observed_state, url=url,
                          error=error, observed_at=NOW)


def test_observed_published_posts_the_target():
    state = target(TargetStatus.PROCESSING, attempt=1, remote_handle=HANDLE.to_wire())
    change = apply(state, observed(state, ObservedState.PUBLISHED, url="https://x/2"))
    assert change.state.status is TargetStatus.POSTED and change.state.url == "https://x/2"


def test_observed_processing_schedules_the_next_check_further_apart():
    state = target(TargetStatus.PROCESSING, attempt=1, status_checks=3, remote_handle=HANDLE.to_wire())
    change = apply(state, observed(state, ObservedState.PROCESSING))
    assert change.state.status is TargetStatus.PROCESSING and change.emit is None
    assert change.state.due_at == NOW + timedelta(seconds=8)


def test_observed_retryable_failure_retries_naming_the_failed_remote_object():
    # the next try reads the object's FAILED from the platform, then makes a fresh one
    state = target(TargetStatus.PROCESSING, attempt=1, remote_handle=HANDLE.to_wire())
    error = PublishError(error_class=ErrorClass.RETRYABLE, code="video_pull_failed", message="x")
    change = apply(state, observed(state, ObservedState.FAILED, error=error))
    assert change.state.status is TargetStatus.RETRY_WAIT and change.state.remote_handle == HANDLE.to_wire()
    again = due(change.state, NOW + timedelta(hours=1))
    assert again.emit is Emit.PUBLISH and again.state.remote_handle == HANDLE.to_wire()


def test_observation_for_another_attempt_is_ignored():
    state = target(TargetStatus.PROCESSING, attempt=2, remote_handle=HANDLE.to_wire())
    assert apply(state, observed(state, ObservedState.PUBLISHED, attempt=1)) is None


def test_post_status_is_derived_from_its_targets():
    P, F, PE, PU = TargetStatus.POSTED, TargetStatus.FAILED, TargetStatus.PENDING, TargetStatus.PUBLISHING
    assert post_status([P, P]) == "posted"
    assert post_status([P, F]) == "failed"
    assert post_status([PE, PE]) == "scheduled"
    assert post_status([P, PU]) == "pending"


def test_backoff_never_exceeds_its_cap():
    rng = random.Random(7)
    assert all(0 <= POLICY.backoff(a, rng) <= POLICY.cap_seconds for a in range(1, 40))
