"""Pure decisions: what a target becomes when it falls due, or when a result arrives.

Each returns a `Change`, or None when the event must not move the target (late, duplicated or
for an attempt that is no longer current): at-least-once delivery makes those normal.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from contracts import ErrorClass, ObservedState, PublishOutcome, PublishResult, StatusObserved

from ._model import TERMINAL, WAITING_TO_PUBLISH, Change, Emit, TargetState, TargetStatus
from ._policy import RetryPolicy, StatusCadence


def on_due(
    state: TargetState, now: datetime, *, lease_seconds: float, cadence: StatusCadence
) -> Change | None:
    """A target whose due time has come: publish it, re-drive its lease, or check its status.

    A status check is due again only after its answer came back (see `on_status_observed`);
    until then the timer stands at the check's own lease, in case the request or answer is lost.
    That keeps one check per target in flight however far behind the poller is.
    """
    if state.status in WAITING_TO_PUBLISH:
        return _start_attempt(state, now, lease_seconds)
    if state.status is TargetStatus.PUBLISHING:
        # The lease ran out: the publisher died or the message was lost. Re-drive it with the
        # stored remote handle so the publisher resumes rather than posting again.
        return _start_attempt(state, now, lease_seconds)
    if state.status is TargetStatus.PROCESSING:
        return Change(
            replace(state, version=state.version + 1, due_at=now + timedelta(seconds=cadence.lease_seconds),
                    status_checks=state.status_checks + 1),
            emit=Emit.STATUS,
        )
    return None


def _start_attempt(state: TargetState, now: datetime, lease_seconds: float) -> Change:
    return Change(
        replace(
            state,
            status=TargetStatus.PUBLISHING,
            version=state.version + 1,
            attempt=state.attempt + 1,
            due_at=now + timedelta(seconds=lease_seconds),
        ),
        emit=Emit.PUBLISH,
    )


def on_publish_result(
    state: TargetState,
    result: PublishResult,
    now: datetime,
    *,
    policy: RetryPolicy,
    cadence: StatusCadence,
    rng: random.Random,
) -> Change | None:
    if state.status in TERMINAL or state.status is TargetStatus.PROCESSING:
        return None
    current = state.status is TargetStatus.PUBLISHING and result.attempt == state.attempt
    success = result.outcome is not PublishOutcome.FAILED
    # A late success of an earlier attempt is still a post on the platform: keep it, so the
    # target is not published a second time. A late failure changes nothing.
    if not current and not success:
        return None
    handle = result.remote_handle.to_wire() if result.remote_handle else state.remote_handle
    if result.outcome is PublishOutcome.PUBLISHED:
        return _posted(state, result.url, result.occurred_at, handle)
    if result.outcome is PublishOutcome.ACCEPTED:
        return Change(
            replace(
                state,
                status=TargetStatus.PROCESSING,
                version=state.version + 1,
                remote_handle=handle,
                status_checks=0,
                due_at=now + timedelta(seconds=cadence.first_seconds),
            ),
            attempt_outcome="accepted",
        )
    return _after_failure(state, result, now, policy, rng)


def _after_failure(
    state: TargetState, result: PublishResult, now: datetime, policy: RetryPolicy, rng: random.Random
) -> Change:
    error = result.error.to_wire() if result.error else {"errorClass": "retryable", "code": "unknown",
                                                         "message": "failed without an error"}
    error_class = result.error.error_class if result.error else ErrorClass.RETRYABLE
    retry_after = result.error.retry_after_sec if result.error else None
    if error_class is ErrorClass.QUOTA:
        wait = retry_after or policy.quota_default_seconds
        return _wait(state, TargetStatus.DEFERRED, now, wait, error)
    retryable = error_class in (ErrorClass.RETRYABLE, ErrorClass.RATE_LIMITED)
    if retryable and not policy.exhausted(state.attempt):
        wait = policy.backoff(state.attempt, rng, retry_after)
        return _wait(state, TargetStatus.RETRY_WAIT, now, wait, error)
    return Change(
        replace(state, status=TargetStatus.FAILED, version=state.version + 1, due_at=None,
                last_error=error),
        attempt_outcome="failed",
        error=error,
    )


def _wait(
    state: TargetState, status: TargetStatus, now: datetime, seconds: float, error: dict
) -> Change:
    return Change(
        replace(state, status=status, version=state.version + 1,
                due_at=now + timedelta(seconds=seconds), last_error=error),
        attempt_outcome="failed",
        error=error,
    )


def _posted(state: TargetState, url: str | None, at: datetime, handle: dict | None) -> Change:
    return Change(
        replace(state, status=TargetStatus.POSTED, version=state.version + 1, due_at=None,
                url=url, published_at=at, remote_handle=handle),
        attempt_outcome="posted",
    )


def on_status_observed(
    state: TargetState,
    observed: StatusObserved,
    now: datetime,
    *,
    policy: RetryPolicy,
    cadence: StatusCadence,
    rng: random.Random,
) -> Change | None:
    if state.status is not TargetStatus.PROCESSING or observed.attempt != state.attempt:
        return None
    if observed.state is ObservedState.PUBLISHED:
        return _posted(state, observed.url, observed.observed_at, state.remote_handle)
    if observed.state is ObservedState.FAILED:
        error = observed.error.to_wire() if observed.error else {
            "errorClass": "permanent", "code": "failed", "message": observed.detail or "failed"}
        retryable = observed.error is not None and observed.error.error_class in (
            ErrorClass.RETRYABLE, ErrorClass.RATE_LIMITED)
        if retryable and not policy.exhausted(state.attempt):
            # The platform gave up on this remote object; a fresh one is safe after FAILED.
            fresh = replace(state, remote_handle=None)
            return _wait(fresh, TargetStatus.RETRY_WAIT, now, policy.backoff(state.attempt, rng), error)
        return Change(
            replace(state, status=TargetStatus.FAILED, version=state.version + 1, due_at=None,
                    last_error=error),
            attempt_outcome="failed",
            error=error,
        )
    # still processing: look again later, further apart each time
    next_check = now + timedelta(seconds=cadence.next_check_in(state.status_checks))
    return Change(replace(state, version=state.version + 1, due_at=next_check))
