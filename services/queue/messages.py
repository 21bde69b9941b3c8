"""What the queue sends: publish and status requests for due targets, engagement onwards."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from contracts import (
    ContentType,
    EngagementObserved,
    MediaRef,
    Platform,
    PostContent,
    PublishRequested,
    RemoteHandle,
    SlotChanged,
    StatusCheck,
    StatusObserved,
    StatusRequested,
    Topics,
)

from .domain import Emit, TargetState, slot_change
from .repository import DueTarget, EngagementContext, LockedTarget


def request_for(due: DueTarget, state: TargetState, emit: Emit) -> tuple[str, str, PublishRequested | StatusRequested]:
    """(topic, key, message) for the change just decided; keyed by account id."""
    if emit is Emit.PUBLISH:
        content = PostContent.model_validate(due.content)
        message = PublishRequested(
            **_target_fields(due, state, f"publish:{state.attempt}", state.attempt),
            post_id=due.post_id,
            content_type=content.content_type,
            caption=due.caption,
            hashtags=due.hashtags,
            media=[MediaRef.model_validate(m) for m in content.media],
            scheduled_time=due.scheduled_time,
        )
        return Topics.publish_requested(message.platform), due.account_id, message
    assert state.remote_handle, "a processing target always has its remote handle"
    message = StatusRequested(
        **_target_fields(due, state, f"status:{state.attempt}:{state.status_checks}", state.attempt),
        expires_at=state.due_at,
    )
    return Topics.status_requested(message.platform), due.account_id, message


def engagement_request_for(due: DueTarget, state: TargetState, age_seconds: float) -> tuple[str, str, StatusRequested]:
    """(topic, key, message) asking for a posted target's engagement at `age_seconds`."""
    assert state.remote_handle is not None, "a posted target always has its remote handle"
    message = StatusRequested(
        # the version makes each ask its own message; a redelivered one is still the same
        **_target_fields(due, state, f"engagement:{state.engagement_checks}:{state.version}",
                         max(state.attempt, 1)),
        check=StatusCheck.ENGAGEMENT,
        url=state.url,
        age_seconds=age_seconds,
        expires_at=state.due_at,
    )
    return Topics.status_requested(message.platform), due.account_id, message


def _target_fields(due: DueTarget, state: TargetState, request_name: str, attempt: int) -> dict[str, Any]:
    """What every request about a target carries: which target, where, and its remote handle.

    The message id is derived from `request_name`, so the same request sent again has the same id.
    """
    handle = state.remote_handle
    return {
        "message_id": uuid.uuid5(state.target_id, request_name),
        "target_id": state.target_id,
        "platform": Platform(due.platform),
        "account_id": due.account_id,
        "attempt": attempt,
        "remote_handle": RemoteHandle.model_validate(handle) if handle else None,
    }


def engagement_observed_for(
    context: EngagementContext, state: TargetState, observed: StatusObserved, final: bool
) -> tuple[str, str, EngagementObserved]:
    """(topic, key, message) telling the planner what a post earned; keyed by account id."""
    assert observed.engagement is not None and observed.age_seconds is not None
    assert state.published_at is not None
    message = EngagementObserved(
        message_id=uuid.uuid5(observed.message_id, "engagement"),
        target_id=state.target_id,
        post_id=context.post_id,
        platform=Platform(context.platform),
        account_id=context.account_id,
        content_type=ContentType(context.content_type),
        scheduled_time=context.scheduled_time,
        published_at=state.published_at,
        age_seconds=observed.age_seconds,
        final=final,
        figures=observed.engagement,
        expected_engagement=context.expected_engagement,
        strategy=context.strategy,
        observed_at=observed.observed_at,
    )
    return Topics.ENGAGEMENT_OBSERVED, context.account_id, message


def slot_changed_for(
    target: DueTarget | LockedTarget, after: TargetState, now: datetime
) -> tuple[str, str, SlotChanged] | None:
    """(topic, key, message) telling the planner a target's slot moved or was given up, if it did."""
    moved = slot_change(target.state, after)
    if moved is None:
        return None
    change, slot_at = moved
    message = SlotChanged(
        message_id=uuid.uuid5(after.target_id, f"slot:{after.version}"),
        target_id=after.target_id,
        platform=Platform(target.platform),
        account_id=target.account_id,
        version=after.version,
        change=change,
        slot_at=slot_at,
        changed_at=now,
    )
    return Topics.SLOT_CHANGED, target.account_id, message
