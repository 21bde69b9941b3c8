"""What the dispatcher sends for a due target: a publish request or a status request."""

from __future__ import annotations

import uuid

from contracts import (
    MediaRef,
    Platform,
    PostContent,
    PublishRequested,
    RemoteHandle,
    StatusRequested,
    Topics,
)

from .domain import Emit, TargetState
from .repository import DueTarget


def request_for(due: DueTarget, state: TargetState, emit: Emit) -> tuple[str, str, PublishRequested | StatusRequested]:
    """(topic, key, message) for the change just decided; keyed by account id."""
    platform = Platform(due.platform)
    handle = RemoteHandle.model_validate(state.remote_handle) if state.remote_handle else None
    if emit is Emit.PUBLISH:
        content = PostContent.model_validate(due.content)
        message = PublishRequested(
            message_id=uuid.uuid5(state.target_id, f"publish:{state.attempt}"),
            target_id=state.target_id,
            post_id=due.post_id,
            platform=platform,
            account_id=due.account_id,
            attempt=state.attempt,
            content_type=content.content_type,
            caption=due.caption,
            hashtags=due.hashtags,
            media=[MediaRef.model_validate(m) for m in content.media],
            scheduled_time=due.scheduled_time,
            remote_handle=handle,
        )
        return Topics.publish_requested(platform), due.account_id, message
    assert handle is not None, "a processing target always has its remote handle"
    message = StatusRequested(
        message_id=uuid.uuid5(state.target_id, f"status:{state.attempt}:{state.status_checks}"),
        target_id=state.target_id,
        platform=platform,
        account_id=due.account_id,
        attempt=state.attempt,
        remote_handle=handle,
    )
    return Topics.status_requested(platform), due.account_id, message
