"""A publish result's id: one per request and answer, so the queue's inbox drops a repeat but
never a different answer to the same request (two publishers reading it across a rebalance)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

from contracts import ContentType, ErrorClass, MediaRef, Platform, PublishOutcome, PublishRequested, RemoteHandle
from services.publishers.handlers import PublishHandlers
from services.publishers.platforms import PlatformError
from services.queue.domain import StatusCadence, TargetState, TargetStatus, on_publish_result, retry_policies

NOW = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
REQUEST = PublishRequested(
    message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=Platform.YOUTUBE,
    account_id="UCx", attempt=3, content_type=ContentType.VIDEO, caption="c",
    media=[MediaRef(url="https://cdn.example/v.mp4")], scheduled_time=NOW)
IN_PROGRESS = PlatformError(ErrorClass.RETRYABLE, "publish_in_progress", "another publisher is working on this target",
                            90.0, pending=True).to_contract()
HANDLE = RemoteHandle(kind="youtube.video", id="vid-1")


def test_another_answer_to_the_same_request_has_another_id():
    busy = PublishHandlers._result(REQUEST, PublishOutcome.FAILED, error=IN_PROGRESS)
    done = PublishHandlers._result(REQUEST, PublishOutcome.PUBLISHED, handle=HANDLE, url="https://youtu.be/vid-1")
    again = PublishHandlers._result(REQUEST, PublishOutcome.PUBLISHED, handle=HANDLE, url="https://youtu.be/vid-1")
    assert busy.message_id != done.message_id, "the holder's success is not a repeat of the refusal"
    assert done.message_id == again.message_id, "a request answered alike twice is applied once"


def test_a_target_another_publisher_holds_waits_without_spending_an_attempt_and_keeps_its_late_success():
    policy = retry_policies()["youtube"]
    state = TargetState(target_id=REQUEST.target_id, status=TargetStatus.PUBLISHING, version=7, attempt=3,
                        due_at=NOW + timedelta(minutes=10), scheduled_time=NOW, failures=1)
    busy = on_publish_result(state, PublishHandlers._result(REQUEST, PublishOutcome.FAILED, error=IN_PROGRESS),
                             NOW, policy=policy, cadence=StatusCadence(), rng=random.Random(1))
    assert busy.state.status is TargetStatus.RETRY_WAIT and busy.state.failures == 1, "no attempt spent"
    done = on_publish_result(busy.state, PublishHandlers._result(REQUEST, PublishOutcome.PUBLISHED, handle=HANDLE,
                                                                  url="https://youtu.be/vid-1"),
                             NOW, policy=policy, cadence=StatusCadence(), rng=random.Random(1))
    assert done.state.status is TargetStatus.POSTED and done.state.url == "https://youtu.be/vid-1"
