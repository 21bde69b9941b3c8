"""Who released a planner slot: the queue's changes release it as the queue's, or hold it again."""

import re

from contracts import SlotChange
from services.planner.domain import ReleasedBy, released_by
from services.runtime import migration_files


def test_a_release_of_the_queue_is_the_queues_and_a_move_holds_the_slot_again():
    assert released_by(SlotChange.RELEASED) is ReleasedBy.QUEUE, "for good: not counted again if the post is back"
    assert released_by(SlotChange.MOVED) is None


def test_every_release_is_one_the_table_accepts():
    migration = dict(migration_files())["016_planner_slots_released_by"]
    [check] = re.findall(r"CHECK \(released_by IN \(([^)]*)\)\)", migration)
    assert {v.strip(" '") for v in check.split(",")} == {r.value for r in ReleasedBy}
