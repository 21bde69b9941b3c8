"""Whatever mix of failures a platform answers with, a target stops being retried: it fails
within its budget of attempts and time, with one alert."""

import random
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import ErrorClass, PublishError, PublishOutcome, PublishResult
from services.queue.domain import RetryPolicy, StatusCadence, TargetState, TargetStatus, on_due, on_publish_result

START = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
CADENCE = StatusCadence()

failures = st.sampled_from(["lease", ErrorClass.RETRYABLE, ErrorClass.RATE_LIMITED, ErrorClass.AUTH])


@settings(max_examples=200, deadline=None)
@given(answers=st.lists(failures, min_size=1, max_size=50), retry_after=st.floats(0, 3600),
       attempts=st.integers(1, 10), budget=st.floats(60, 48 * 3600), seed=st.integers(0, 2**32))
def test_failures_of_every_kind_end_in_failed_with_an_alert(answers, retry_after, attempts, budget, seed):
    policy = RetryPolicy(max_attempts=attempts, max_elapsed_seconds=budget)
    rng = random.Random(seed)
    now = START
    state = TargetState(target_id=uuid.uuid4(), status=TargetStatus.PENDING, version=0, attempt=0,
                        due_at=START, scheduled_time=START)
    alerts = []
    for step in range(100_000):
        assert state.status is not TargetStatus.FAILED or step > 0
        if state.status is TargetStatus.FAILED:
            break
        now = max(now, state.due_at)
        change = on_due(state, now, lease_seconds=600, cadence=CADENCE, policy=policy)
        state, alert = change.state, change.alert
        if state.status is TargetStatus.PUBLISHING:
            answer = answers[step % len(answers)]
            if answer == "lease":  # no answer at all: the lease runs out
                continue
            error = PublishError(error_class=answer, code="x", message="x", retry_after_sec=retry_after)
            result = PublishResult(message_id=uuid.uuid4(), target_id=state.target_id, attempt=state.attempt,
                                   outcome=PublishOutcome.FAILED, error=error, occurred_at=now)
            change = on_publish_result(state, result, now, policy=policy, cadence=CADENCE, rng=rng)
            state, alert = change.state, change.alert
        if alert:
            alerts.append(alert)
    assert state.status is TargetStatus.FAILED, f"still {state.status} after {step} steps"
    assert len(alerts) == 1
    assert now <= START + timedelta(seconds=budget + 600 + policy.reconnect_wait_seconds + max(retry_after, 600))
