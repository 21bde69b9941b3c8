"""When a target's change moves its place in the account's calendar, which the planner keeps
to space an account's posts and count them against its daily caps."""

from __future__ import annotations

from datetime import datetime

from contracts import SlotChange

from ._model import TargetState, TargetStatus

# it will not be published at its slot (an operator may arm it again: then it holds a new one)
GIVEN_UP = frozenset({TargetStatus.FAILED, TargetStatus.CANCELLED})


def slot_change(before: TargetState, after: TargetState) -> tuple[SlotChange, datetime | None] | None:
    """What the planner should know of `before` -> `after`: released, moved (to when), or nothing."""
    if after.status in GIVEN_UP:
        return (SlotChange.RELEASED, None) if before.status not in GIVEN_UP else None
    if after.scheduled_time is not None and (
        before.status in GIVEN_UP or after.scheduled_time != before.scheduled_time
    ):
        return SlotChange.MOVED, after.scheduled_time
    return None
