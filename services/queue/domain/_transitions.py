"""Pure decisions: what a target becomes when it falls due, or when a result arrives.

Each returns a `Change`, or None when the event must not move the target (late, duplicated or
for an attempt that is no longer current): at-least-once delivery makes those normal.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from contracts import (
    NEEDS_REVIEW,
    AlertKind,
    ErrorClass,
    ObservedState,
    PublishError,
    PublishOutcome,
    PublishResult,
    StatusCheck,
    StatusObserved,
)

from ._model import WAITING_TO_PUBLISH, Change, Emit, TargetState, TargetStatus
from ._policy import EngagementCadence, RetryPolicy, StatusCadence

LEASE_EXPIRED = {"errorClass": ErrorClass.RETRYABLE.value, "code": "lease_expired",
                 "message": "no result within the lease: driven again with the stored remote handle"}
ACCEPTED_WITHOUT_HANDLE = {
    "errorClass": ErrorClass.PERMANENT.value, "code": NEEDS_REVIEW,
    "message": "the platform accepted the post but the publisher gave no handle to follow it by. "
               "Check the account: if the post is there, `autopost found` this target with its "
               "address; if not, `autopost retry` it."}


# the outbox's times are the database's clock, a lease's this process's: its request was
# written as the lease began, up to this much later or earlier as the two clocks tell it
_CLOCK_SLACK = timedelta(seconds=30)


def on_due(
    state: TargetState,
    now: datetime,
    *,
    lease_seconds: float,
    cadence: StatusCadence,
    policy: RetryPolicy,
    unsent_since: datetime | None = None,
) -> Change | None:
    """A target whose due time has come: publish it, re-drive its lease, or check its status.

    A status check is due again only after its answer came back (see `on_status_observed`);
    until then the timer stands at the check's own lease, in case the request or answer is lost.
    That keeps one check per target in flight however far behind the poller is.

    `unsent_since`: when the oldest message still in the outbox was written (None: it is
    empty). A lease that began after it may not have been sent at all (the broker or the relay
    is down): it is renewed, spending no attempt and sending nothing more, until the platform's
    time budget runs out.
    """
    if state.status in WAITING_TO_PUBLISH:
        return _start_attempt(state, now, lease_seconds)
    if state.status is TargetStatus.PUBLISHING:
        began = state.due_at - timedelta(seconds=lease_seconds) if state.due_at is not None else None
        if unsent_since is not None and began is not None and began + _CLOCK_SLACK >= unsent_since \
                and now < _deadline(state, policy, now):
            return Change(replace(state, version=state.version + 1, due_at=now + timedelta(seconds=lease_seconds)))
        # The lease ran out: the publisher died or a message was lost. Re-drive it with the
        # stored remote handle so the publisher resumes rather than posting again; a target
        # that keeps losing its lease is a failure like any other, not a loop.
        failures = state.failures + 1
        if policy.exhausted(failures) or now >= _deadline(state, policy, now):
            return _failed(replace(state, failures=failures), LEASE_EXPIRED, AlertKind.ATTEMPTS_EXHAUSTED)
        change = _start_attempt(replace(state, failures=failures, last_error=LEASE_EXPIRED), now, lease_seconds)
        return replace(change, attempt_outcome="lease_expired", error=LEASE_EXPIRED)
    if state.status is TargetStatus.PROCESSING:
        if now >= _processing_deadline(state, policy, now):
            return _failed(state, _processing_timeout(state), AlertKind.PUBLISH_FAILED)
        return Change(
            replace(state, version=state.version + 1, due_at=now + timedelta(seconds=cadence.lease_seconds),
                    status_checks=state.status_checks + 1),
            emit=Emit.STATUS,
        )
    return None


def on_publish_result(
    state: TargetState,
    result: PublishResult,
    now: datetime,
    *,
    policy: RetryPolicy,
    cadence: StatusCadence,
    rng: random.Random,
) -> Change | None:
    if state.status in (TargetStatus.POSTED, TargetStatus.PROCESSING):
        return None
    current = state.status is TargetStatus.PUBLISHING and result.attempt == state.attempt
    success = result.outcome is not PublishOutcome.FAILED
    # A late success of an earlier attempt is still a post on the platform (even one we gave up
    # on, or an operator cancelled after it was sent): keep it, so the target is not published a
    # second time and says where it is. A late failure changes nothing.
    if not success and not current:
        return None
    handle = result.remote_handle.to_wire() if result.remote_handle else state.remote_handle
    if result.outcome is PublishOutcome.PUBLISHED:
        return _posted(state, result.url, result.occurred_at, handle)
    if result.outcome is PublishOutcome.ACCEPTED:
        if handle is None:  # nothing to follow it by, and sending it again could post it twice
            return _failed(state, ACCEPTED_WITHOUT_HANDLE, AlertKind.PUBLISH_FAILED) if current else None
        return Change(
            replace(
                state,
                status=TargetStatus.PROCESSING,
                version=state.version + 1,
                remote_handle=handle,
                status_checks=0,
                due_at=now + timedelta(seconds=cadence.first_seconds),
                deferred_since=None,
                quota_alerted=False,
                processing_since=now,
            ),
            attempt_outcome="accepted",
        )
    # a failure after the platform made something names it: the next try resumes from it
    return _after_failure(replace(state, remote_handle=handle), result.error or _UNEXPLAINED, now, policy, rng)


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
        # what it said while processing is no error of the post it became
        done = replace(state, last_error=None) if (state.last_error or {}).get("code") == STILL_PROCESSING else state
        return _posted(done, observed.url, observed.observed_at, state.remote_handle)
    if observed.state is ObservedState.FAILED:
        error = observed.error or PublishError(
            error_class=ErrorClass.PERMANENT, code="failed", message=observed.detail or "failed")
        # The platform gave up on this remote object: a fresh one is safe after FAILED. The handle
        # stays with the target all the same: the next try reads that FAILED from it before it
        # makes the new one, which a publisher whose record lags needs (TikTok: a pull init whose
        # answer's save raised would otherwise be stopped for review)
        return _after_failure(state, error, now, policy, rng)
    # still processing: look again later, further apart each time, keeping what the platform said
    next_check = now + timedelta(seconds=cadence.next_check_in(state.status_checks))
    return Change(replace(state, version=state.version + 1, due_at=next_check,
                          last_error=_still_processing(state, observed)))


# -- what the platform last said of a post it is still processing ------------------------------

# A target's `last_error` while the platform processes it: what the last status check reported
# (TikTok's PROCESSING_DOWNLOAD, "in moderation", YouTube's "uploaded", a read that failed with
# status_unreadable ...), pending rather than failed, for operators and for the timeout to tell.
STILL_PROCESSING = "still_processing"
_STATUS_CHARS = 500  # a platform's message can be long; the timeout's own message stays readable


def _still_processing(state: TargetState, observed: StatusObserved) -> dict[str, Any]:
    error = observed.error
    said = observed.detail or (f"{error.code}: {error.message}" if error is not None else None)
    return {"errorClass": ErrorClass.RETRYABLE.value, "code": STILL_PROCESSING, "pending": True,
            "message": (said or observed.state.value)[:_STATUS_CHARS],
            "attempt": state.attempt, "observedAt": observed.observed_at.isoformat()}


def _last_status(state: TargetState) -> dict[str, Any] | None:
    """What the platform last said of this attempt's processing, if a check was answered."""
    last = state.last_error or {}
    if last.get("code") != STILL_PROCESSING or last.get("attempt") != state.attempt:
        return None  # an earlier attempt's error, or no answer to any check yet
    return last


def _processing_timeout(state: TargetState) -> dict[str, Any]:
    last = _last_status(state)
    said = last.get("message") if last is not None else None
    told = f"last reported: {said}" if said else "no check was answered"
    return {"errorClass": ErrorClass.PERMANENT.value, "code": "processing_timeout",
            "message": f"still processing on the platform after {state.status_checks} checks ({told})",
            "lastStatus": said, "lastStatusAt": last.get("observedAt") if last is not None else None}


# -- what a failure leads to ------------------------------------------------------------------

_UNEXPLAINED = PublishError(error_class=ErrorClass.RETRYABLE, code="unknown",
                            message="failed without an error")


def _after_failure(
    state: TargetState, error: PublishError, now: datetime, policy: RetryPolicy, rng: random.Random
) -> Change:
    """Quota waits for its window; auth waits for a reconnect; retryable backs off within the
    platform's budget; anything else fails at once with the platform's reason."""
    wire = error.to_wire()
    deadline = _deadline(state, policy, now)
    if error.error_class is ErrorClass.QUOTA:
        return _deferred_for_quota(state, wire, now, error.retry_after_sec or policy.quota_default_seconds, policy)
    state = replace(state, deferred_since=None, quota_alerted=False)  # the quota wait, if any, is over
    if error.error_class is ErrorClass.AUTH:
        # the publisher already refreshed and failed; the account needs an operator (alerted
        # by the publisher), so wait for a reconnect as long as the budget allows
        if now + timedelta(seconds=policy.reconnect_wait_seconds) > deadline:
            return _failed(state, wire, AlertKind.ATTEMPTS_EXHAUSTED)
        return _wait(state, TargetStatus.DEFERRED, now, policy.reconnect_wait_seconds, wire)
    if error.error_class in (ErrorClass.RETRYABLE, ErrorClass.RATE_LIMITED):
        # a rate limit is the platform's pacing, and a pending error its processing (a
        # container), not this post's fault: neither spends an attempt, and only the time budget
        # bounds them; a rate limit's back-off still grows with every try, a pending wait does not
        pending = error.error_class is ErrorClass.RETRYABLE and bool(error.pending)
        retryable = error.error_class is ErrorClass.RETRYABLE and not pending
        failures = state.failures + retryable
        tries = failures if retryable else 1 if pending else state.attempt
        wait = policy.backoff(tries, rng, error.retry_after_sec)
        if policy.exhausted(failures) or now + timedelta(seconds=wait) > deadline:
            return _failed(replace(state, failures=failures), wire, AlertKind.ATTEMPTS_EXHAUSTED)
        return _wait(replace(state, failures=failures), TargetStatus.RETRY_WAIT, now, wait, wire)
    return _failed(state, wire, AlertKind.PUBLISH_FAILED)


def _deferred_for_quota(
    state: TargetState, error: dict[str, Any], now: datetime, seconds: float, policy: RetryPolicy
) -> Change:
    since = state.deferred_since or now
    seconds = policy.capped_wait(seconds)
    alert = None
    # told as soon as the wait is known to pass the threshold, not at the next refusal after it
    threshold = timedelta(seconds=policy.quota_alert_after_seconds)
    if not state.quota_alerted and now + timedelta(seconds=seconds) - since >= threshold:
        alert = AlertKind.QUOTA_BLOCKED
    waiting = replace(state, deferred_since=since, quota_alerted=state.quota_alerted or alert is not None)
    return replace(_wait(waiting, TargetStatus.DEFERRED, now, seconds, error), alert=alert)


def _deadline(state: TargetState, policy: RetryPolicy, now: datetime) -> datetime:
    return policy.deadline(state.scheduled_time or now)


def _processing_deadline(state: TargetState, policy: RetryPolicy, now: datetime) -> datetime:
    """The platform has the post: it gets the whole budget from its acceptance, even when a
    quota wait (which the budget does not bound) brought that acceptance late. A target accepted
    before this was recorded keeps the budget from its slot."""
    deadline = _deadline(state, policy, now)
    return deadline if state.processing_since is None else max(deadline, policy.deadline(state.processing_since))


# -- the moves themselves ---------------------------------------------------------------------

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


def _wait(
    state: TargetState, status: TargetStatus, now: datetime, seconds: float, error: dict[str, Any]
) -> Change:
    return Change(
        replace(state, status=status, version=state.version + 1,
                due_at=now + timedelta(seconds=seconds), last_error=error),
        attempt_outcome="failed",
        error=error,
    )


def _failed(state: TargetState, error: dict[str, Any], alert: AlertKind) -> Change:
    return Change(
        replace(state, status=TargetStatus.FAILED, version=state.version + 1, due_at=None,
                last_error=error),
        attempt_outcome="failed",
        error=error,
        alert=alert,
    )


def _posted(state: TargetState, url: str | None, at: datetime, handle: dict | None) -> Change:
    return Change(
        replace(state, status=TargetStatus.POSTED, version=state.version + 1, due_at=None,
                url=url, published_at=at, remote_handle=handle, deferred_since=None,
                quota_alerted=False),
        attempt_outcome="posted",
    )


# -- engagement collection of a posted target, on the same timer ---------------------------------

def with_engagement_timer(change: Change, cadence: EngagementCadence) -> Change:
    """A change that posts a target sets its timer to the first engagement collection (when
    there is a handle to collect it by)."""
    state = change.state
    if (state.status is not TargetStatus.POSTED or state.published_at is None or state.due_at is not None
            or state.remote_handle is None):
        return change
    return replace(change, state=replace(state, engagement_checks=0,
                                         due_at=_collection_due(state, 0, collection_ages(state, cadence))))


def on_engagement_due(state: TargetState, now: datetime, cadence: EngagementCadence) -> Change | None:
    """A posted target whose engagement collection is due: ask for it, under a lease.

    A collection too late to compare with others is skipped; after the last one the timer
    stops.
    """
    if state.status is not TargetStatus.POSTED:
        return None
    checks = state.engagement_checks
    ages = collection_ages(state, cadence)
    if state.published_at is None or state.remote_handle is None or checks >= len(ages):
        return _stop_collecting(state, len(ages))
    due = state.published_at + timedelta(seconds=ages[checks])
    if now < due:  # the ages were changed since this time was set
        return Change(replace(state, version=state.version + 1, due_at=due))
    if now > due + timedelta(seconds=cadence.give_up_after(ages[checks])):
        return _next_collection(state, ages)
    return Change(
        replace(state, version=state.version + 1, due_at=now + timedelta(seconds=cadence.lease_seconds)),
        emit=Emit.ENGAGEMENT,
    )


def on_engagement_observed(
    state: TargetState, observed: StatusObserved, now: datetime, cadence: EngagementCadence
) -> Change | None:
    """Figures for the collection in flight move the timer to the next one, and go to the
    planner; a failed read is retried (or skipped when the platform will never tell).

    A target posted without its URL (a TikTok post whose moderation outlasted the status
    check) takes the one the read found the post by, from any answer, even a late one: a URL
    is filled in, never replaced."""
    if state.status is not TargetStatus.POSTED or observed.check is not StatusCheck.ENGAGEMENT:
        return None
    checks = state.engagement_checks
    ages = collection_ages(state, cadence)
    learnt = replace(state, url=observed.url) if state.url is None and observed.url else state
    if checks >= len(ages) or observed.age_seconds != ages[checks]:
        # late, repeated, or for a collection that is no longer current: at most its URL is news
        return None if learnt is state else Change(replace(learnt, version=state.version + 1))
    state = learnt
    if observed.engagement is not None:
        return replace(_next_collection(state, ages), emit=Emit.ENGAGEMENT_OBSERVED)
    if observed.error is not None and observed.error.error_class is ErrorClass.PERMANENT:
        return _next_collection(state, ages)
    # as late again as it is already (1, 2, 4 … minutes): a post gone from the platform (a read
    # that says "not listed" until the collection is given up) is read a dozen times, not once
    # a minute for a day, each read the platform's quota
    due = _collection_due(state, checks, ages)
    late = (now - due).total_seconds() if due is not None else 0.0
    wait = max(cadence.retry_seconds, late, (observed.error.retry_after_sec or 0.0) if observed.error else 0.0)
    return Change(replace(state, version=state.version + 1, due_at=now + timedelta(seconds=wait)))


# The helpers below take the post's `collection_ages`, computed once by the transition that
# calls them: what a transition changes (the count, the URL) leaves those ages as they were.
def _next_collection(state: TargetState, ages: tuple[float, ...]) -> Change:
    checks = state.engagement_checks + 1
    return Change(replace(state, version=state.version + 1, engagement_checks=checks,
                          due_at=_collection_due(state, checks, ages)))


def _stop_collecting(state: TargetState, checks: int) -> Change:
    return Change(replace(state, version=state.version + 1, engagement_checks=checks, due_at=None))


def _collection_due(state: TargetState, checks: int, ages: tuple[float, ...]) -> datetime | None:
    if state.published_at is None or checks >= len(ages):
        return None
    return state.published_at + timedelta(seconds=ages[checks])


def collection_ages(state: TargetState, cadence: EngagementCadence) -> tuple[float, ...]:
    """The ages at which this target's engagement is collected: the cadence's, ending before
    the platform stops giving the post's figures (its handle's `figuresUntil`)."""
    until = (state.remote_handle or {}).get("figuresUntil")
    try:
        figures_until = datetime.fromisoformat(until) if isinstance(until, str) else None
    except ValueError:
        figures_until = None
    return cadence.ages_for(state.published_at, figures_until)
