"""A target's state (one post on one platform account) and its statuses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from contracts import AlertKind


class TargetStatus(str, Enum):
    PENDING = "pending"
    PUBLISHING = "publishing"
    PROCESSING = "processing"
    POSTED = "posted"
    FAILED = "failed"
    RETRY_WAIT = "retry_wait"
    DEFERRED = "deferred"
    CANCELLED = "cancelled"


TERMINAL = frozenset({TargetStatus.POSTED, TargetStatus.FAILED, TargetStatus.CANCELLED})
WAITING_TO_PUBLISH = frozenset({TargetStatus.PENDING, TargetStatus.RETRY_WAIT, TargetStatus.DEFERRED})


@dataclass(frozen=True, slots=True)
class TargetState:
    target_id: uuid.UUID
    status: TargetStatus
    version: int
    attempt: int
    due_at: datetime | None
    status_checks: int = 0
    remote_handle: dict[str, Any] | None = None
    url: str | None = None
    last_error: dict[str, Any] | None = None
    published_at: datetime | None = None
    # the slot it was planned (or rescheduled) for: retry and processing budgets count from it
    scheduled_time: datetime | None = None
    failures: int = 0  # retryable failures and expired leases, against the attempt budget
    deferred_since: datetime | None = None  # start of the current wait on a quota
    quota_alerted: bool = False
    engagement_checks: int = 0  # engagement collections of a posted target done (or given up)
    # when the platform accepted it: its processing there is given the platform's budget from then
    processing_since: datetime | None = None


class Emit(str, Enum):
    PUBLISH = "publish"
    STATUS = "status"
    ENGAGEMENT = "engagement"  # ask the poller for a posted target's engagement
    ENGAGEMENT_OBSERVED = "engagement observed"  # tell the planner what a post earned


@dataclass(frozen=True, slots=True)
class Change:
    """The next state of a target, and what to send because of it."""

    state: TargetState
    emit: Emit | None = None
    attempt_outcome: str | None = None  # recorded in the attempts log when set
    error: dict[str, Any] | None = field(default=None)
    alert: AlertKind | None = None  # a persistent failure administrators are told about once


def post_status(statuses: list[TargetStatus]) -> str:
    """The seed's post status, derived from its targets: pending | scheduled | posted | failed."""
    if statuses and all(s is TargetStatus.POSTED for s in statuses):
        return "posted"
    if any(s is TargetStatus.FAILED for s in statuses) and all(s in TERMINAL for s in statuses):
        return "failed"
    if all(s is TargetStatus.PENDING for s in statuses):
        return "scheduled"
    return "pending"
