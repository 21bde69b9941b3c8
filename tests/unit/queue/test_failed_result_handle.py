"""A failed publish that names what the platform made: the queue keeps it for the next try."""

from __future__ import annotations

from contracts import ErrorClass, PublishError, PublishOutcome, RemoteHandle
from services.queue.domain import Emit, TargetStatus
from test_transitions import HANDLE, apply, due, result, target

RETRYABLE = PublishError(error_class=ErrorClass.RETRYABLE, code="timeout", message="no answer")
MADE = RemoteHandle(kind="tiktok.publish_id", id="v_pub_file~2", extra={"mediaType": "video"})


def test_a_failed_result_with_a_handle_is_kept_and_sent_with_the_retry():
    state = target(TargetStatus.PUBLISHING, attempt=1, remote_handle=HANDLE.to_wire())
    change = apply(state, result(state, PublishOutcome.FAILED, error=RETRYABLE, handle=MADE))
    assert change.state.status is TargetStatus.RETRY_WAIT
    assert change.state.remote_handle == MADE.to_wire()
    retry = due(change.state, change.state.due_at)
    assert retry.emit is Emit.PUBLISH and retry.state.remote_handle == MADE.to_wire()


def test_a_failed_result_without_one_leaves_the_stored_handle():
    state = target(TargetStatus.PUBLISHING, attempt=1, remote_handle=HANDLE.to_wire())
    change = apply(state, result(state, PublishOutcome.FAILED, error=RETRYABLE, handle=None))
    assert change.state.remote_handle == HANDLE.to_wire()
    late = target(TargetStatus.RETRY_WAIT, attempt=2, remote_handle=HANDLE.to_wire())
    assert apply(late, result(late, PublishOutcome.FAILED, attempt=1, error=RETRYABLE, handle=MADE)) is None
