"""What an operator may do to a target, and why not when it is too late."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from contracts import FOUND_HANDLE_KIND, NEEDS_REVIEW

from ._model import WAITING_TO_PUBLISH, Change, TargetState, TargetStatus


@dataclass(frozen=True, slots=True)
class Refused:
    """The command cannot apply; `reason` says what happened to the target instead."""

    reason: str


def cancel(state: TargetState) -> Change | Refused:
    if state.status in WAITING_TO_PUBLISH or state.status is TargetStatus.FAILED:
        return Change(replace(state, status=TargetStatus.CANCELLED, version=state.version + 1, due_at=None),
                      attempt_outcome="cancelled")
    return Refused(_too_late(state))


def reschedule(state: TargetState, at: datetime) -> Change | Refused:
    """A new slot; a failed target is armed again, with a fresh budget. Cancelled stays cancelled."""
    if state.status in WAITING_TO_PUBLISH or state.status is TargetStatus.FAILED:
        return Change(_armed(state, at, scheduled_time=at), attempt_outcome="rescheduled")
    return Refused(_too_late(state))


def retry(state: TargetState, now: datetime) -> Change | Refused:
    """Publish again now: a failed target, or one waiting on a back-off or a deferral."""
    if state.status in (TargetStatus.FAILED, TargetStatus.RETRY_WAIT, TargetStatus.DEFERRED):
        return Change(_armed(state, now, scheduled_time=now), attempt_outcome="retry_requested")
    if state.status is TargetStatus.PENDING:
        return Refused(f"not due yet: it is scheduled for {state.due_at:%Y-%m-%d %H:%M:%S %Z}; "
                       "use reschedule to move it")
    return Refused(_too_late(state))


def found(state: TargetState, url: str, published_at: datetime, *, by_address: bool) -> Change | Refused:
    """An operator found on the platform the post of a target that failed for review: posted, at
    `url`, since `published_at`. The platform's handle on it was never stored: on a platform that
    finds posts `by_address`, the address stands in for it, so the post's engagement is read."""
    if awaited_review(state):
        handle = {"kind": FOUND_HANDLE_KIND, "id": url} if by_address else None
        return Change(replace(state, status=TargetStatus.POSTED, version=state.version + 1, due_at=None,
                              url=url, published_at=published_at, remote_handle=handle),
                      attempt_outcome="found")
    if state.status is TargetStatus.FAILED:
        return Refused("it did not fail for review: the platform said why; nothing was changed")
    return Refused(_too_late(state))


def awaited_review(state: TargetState) -> bool:
    """Failed for a person to check on the platform: re-armed by one, it was checked."""
    return state.status is TargetStatus.FAILED and (state.last_error or {}).get("code") == NEEDS_REVIEW


def _armed(state: TargetState, due: datetime, *, scheduled_time: datetime) -> TargetState:
    return replace(state, status=TargetStatus.PENDING, version=state.version + 1, due_at=due,
                   scheduled_time=scheduled_time, failures=0, deferred_since=None, quota_alerted=False)


def _too_late(state: TargetState) -> str:
    if state.status is TargetStatus.PUBLISHING:
        return (f"already dispatched (attempt {state.attempt}): the publisher may have posted it; "
                "nothing was changed")
    if state.status is TargetStatus.PROCESSING:
        return "already accepted by the platform, which is processing it; nothing was changed"
    if state.status is TargetStatus.POSTED:
        return f"already posted{f' at {state.url}' if state.url else ''}; nothing was changed"
    if state.status is TargetStatus.CANCELLED:
        return "already cancelled"
    return f"it is {state.status.value}; nothing was changed"
