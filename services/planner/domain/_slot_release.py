"""Who released a planner slot: what decides whether it may count again."""

from __future__ import annotations

from enum import Enum

from contracts import SlotChange


class ReleasedBy(str, Enum):
    """`planner_slots.released_by` (016); NULL (None) while the slot is held."""

    PLANNER = "planner"  # its post given up unstored: counts again if the post comes back
    QUEUE = "queue"  # failed or cancelled in the queue: held again only if the queue moves it


def released_by(change: SlotChange) -> ReleasedBy | None:
    """Who has released a slot after this change of the queue: the queue, for a release; nobody,
    for a move (the slot is held again at its new time, whoever released it before)."""
    return ReleasedBy.QUEUE if change is SlotChange.RELEASED else None

