"""A target's place in its account's calendar, as the queue changes it after planning."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from ._base import Message
from ._common import AccountId, Platform
from ._topics import Topics


class SlotChange(str, Enum):
    RELEASED = "released"  # failed or cancelled: it will not be published at its slot
    MOVED = "moved"  # rescheduled, or armed again after failing: it holds `slotAt` now


class SlotChanged(Message):
    """Keyed by account id (queue -> planner): the planner's spacing and daily caps count a
    target's slot only while the target may still be published there.

    `version` is the target's in the queue: the planner applies a change only over an older
    one, so a redelivered or reordered message cannot undo a later change.
    """

    TOPIC: ClassVar[str] = Topics.SLOT_CHANGED

    message_id: uuid.UUID
    target_id: uuid.UUID
    platform: Platform
    account_id: AccountId
    version: int = Field(ge=0)
    change: SlotChange
    slot_at: AwareDatetime | None = None  # for `moved`
    changed_at: AwareDatetime
