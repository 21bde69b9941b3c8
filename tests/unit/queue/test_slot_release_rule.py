"""What the planner hears of a target's change: its slot given up, moved, or nothing."""

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from contracts import SlotChange
from services.queue.domain import TargetState, TargetStatus, cancel, reschedule, retry, slot_change

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=3)


def target(status: TargetStatus) -> TargetState:
    return TargetState(target_id=uuid.uuid4(), status=status, version=5, attempt=1, due_at=NOW, scheduled_time=NOW)


@pytest.mark.parametrize("status", [TargetStatus.PENDING, TargetStatus.RETRY_WAIT, TargetStatus.PUBLISHING,
                                    TargetStatus.DEFERRED])
def test_failing_or_cancelling_gives_the_slot_up_once(status):
    before = target(status)
    failed = replace(before, status=TargetStatus.FAILED)
    assert slot_change(before, failed) == (SlotChange.RELEASED, None)
    assert slot_change(failed, cancel(failed).state) is None, "already given up"
    if status is not TargetStatus.PUBLISHING:  # too late to cancel once dispatched
        assert slot_change(before, cancel(before).state) == (SlotChange.RELEASED, None)


def test_rescheduling_or_retrying_takes_a_slot_at_the_new_time():
    pending, failed = target(TargetStatus.PENDING), target(TargetStatus.FAILED)
    assert slot_change(pending, reschedule(pending, LATER).state) == (SlotChange.MOVED, LATER)
    assert slot_change(failed, retry(failed, LATER).state) == (SlotChange.MOVED, LATER)


@pytest.mark.parametrize("after", [TargetStatus.PUBLISHING, TargetStatus.PROCESSING, TargetStatus.POSTED,
                                   TargetStatus.RETRY_WAIT, TargetStatus.DEFERRED])
def test_the_ordinary_course_says_nothing(after):
    before = target(TargetStatus.PENDING)
    assert slot_change(before, replace(before, status=after, due_at=LATER)) is None
