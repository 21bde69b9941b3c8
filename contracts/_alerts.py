"""What administrators are told about: failures that persist, not every retry."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from ._base import Message
from ._common import Platform
from ._topics import Topics


class AlertKind(str, Enum):
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # retries or the time budget spent
    PUBLISH_FAILED = "publish_failed"  # the platform refused the post for good
    RECONNECT_NEEDED = "reconnect_needed"  # an account's authorization is gone
    QUOTA_BLOCKED = "quota_blocked"  # a target waited on a quota longer than allowed
    DEAD_LETTER = "dead_letter"  # a message no consumer could process


class AdminAlert(Message):
    """One persistent failure; `alertId` is derived from what failed, so a repeat is one alert."""

    TOPIC: ClassVar[str] = Topics.ALERTS

    alert_id: uuid.UUID
    kind: AlertKind
    reason: str = Field(max_length=500)
    message: str = Field(max_length=4000)
    platform: Platform | None = None
    account_id: str | None = None
    post_id: uuid.UUID | None = None
    target_id: uuid.UUID | None = None
    last_error: dict | None = None
    trace_id: str | None = None
    raised_at: AwareDatetime
