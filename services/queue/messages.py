"""What the queue sends: publish and status requests for due targets, engagement onwards."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from contracts import (
    AdminAlert,
    AlertKind,
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

from services.runtime import trace_id_of

from .domain import Emit, TargetState, TargetStatus, slot_change
from .repository import DueTarget, EngagementContext, LockedTarget

UNREADABLE = "unreadable_target"


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


def unreadable_error(exc: BaseException) -> dict[str, str]:
    """A target's last error when its stored row does not make a valid request (content that no
    longer validates, a remote handle of the wrong shape): permanent, sending again would not help."""
    return {"errorClass": "permanent", "code": UNREADABLE, "message": f"{type(exc).__name__}: {exc}"[:2000]}


def unreadable_alert_for(due: DueTarget, after: TargetState, now: datetime) -> tuple[str, str, AdminAlert]:
    """(topic, key, alert) for a target failed because its stored row cannot be sent. Built from
    what may be read of that row: it is the row that is in question."""
    error = after.last_error or {}
    try:
        platform: Platform | None = Platform(due.platform)
    except ValueError:
        platform = None
    try:
        trace_id = trace_id_of(due.trace_context)
    except Exception:
        trace_id = None
    if due.state.status in (TargetStatus.PUBLISHING, TargetStatus.PROCESSING):
        # its request went out before: the platform may have the post
        advice = ("A request for it went out before, so check the account: if the post is there, "
                  "`autopost found` this target with its address; if not, correct the stored row "
                  "and `autopost retry` it.")
    else:
        advice = "Nothing was sent for it. Correct the stored row and `autopost retry` it."
    alert = AdminAlert(
        # one alert per failure: a replay of the same change is the same alert
        alert_id=uuid.uuid5(after.target_id, f"{UNREADABLE}:{after.version}"),
        kind=AlertKind.PUBLISH_FAILED,
        reason=UNREADABLE,
        message=(f"{due.platform} target of post {due.upstream_id} for account {due.account_id} "
                 f"cannot be dispatched: its stored post or target is unreadable and was failed "
                 f"({error.get('message') or 'no detail'}). {advice}")[:4000],
        platform=platform,
        account_id=due.account_id,
        post_id=due.post_id,
        target_id=after.target_id,
        last_error=error or None,
        trace_id=trace_id,
        raised_at=now,
    )
    return Topics.ALERTS, str(after.target_id), alert
