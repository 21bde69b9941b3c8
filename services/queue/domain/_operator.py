"""What an operator may do to a target, and why not when it is too late."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

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


# Where each platform's posts are: the addresses its publisher builds (www.tiktok.com/@…/video/…,
# www.youtube.com/watch?v=…), and those the operator copies from the app (vm.tiktok.com,
# youtu.be, m.youtube.com, …).
POST_HOSTS: dict[str, tuple[str, ...]] = {
    "tiktok": ("tiktok.com",),
    "instagram": ("instagram.com",),
    "youtube": ("youtube.com", "youtu.be"),
}


def url_refusal(platform: str, url: str) -> Refused | None:
    """Why `url` cannot be the address of a post on `platform` (None: it can)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    domains = POST_HOSTS.get(platform, ())
    if any(host == d or host.endswith("." + d) for d in domains):
        return None
    return Refused(f"{url} is not an address on {platform} (expected {' or '.join(domains) or 'its own host'}); "
                   "nothing was changed")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A target a reference names, as the operator tells them apart."""

    target_id: str
    platform: str
    account_id: str
    status: str


def ambiguous(candidates: Sequence[Candidate], command: str) -> Refused:
    """A command that must name one target, given a reference that names several."""
    listed = ", ".join(f"{c.target_id} ({c.platform}/{c.account_id}, {c.status})" for c in candidates)
    return Refused(f"ambiguous: the reference names {len(candidates)} targets; {command} one by its target id: "
                   f"{listed}; nothing was changed")


# how a retry refused for review begins: the CLI exits non-zero on it, though others were retried
HELD_FOR_REVIEW = "awaits review (check the platform first)"


def review_needs_its_own_name(state: TargetState, others: Sequence[Candidate]) -> Refused:
    """Retry by a post's reference of a target that awaits review, among others: each such target
    is checked on the platform on its own, and re-armed by its own target id."""
    names = ", ".join(f"{c.target_id} ({c.platform}/{c.account_id})" for c in others)
    return Refused(f"{HELD_FOR_REVIEW}: retry it by its target id, {state.target_id}, "
                   f"once checked; the post's targets awaiting review: {names}; nothing was changed")


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
