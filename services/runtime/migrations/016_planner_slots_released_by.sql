-- Who released a planner slot, said rather than derived. A slot the planner released (its post
-- given up to the dead letters, services/planner/recovery.py) counts again if its post comes
-- back; one the queue released (failed, cancelled) does not, until the queue moves it. Until now
-- the first was told apart by `queue_version` 0 (no change of the queue applied): released_by
-- says it, NULL while the slot is held, and queue_version is only the order of the queue's changes.
-- `released` stays, written in step (released_by IS NOT NULL), for planners of the release before
-- this one that run beside it during a rolling update; a later migration drops it.
ALTER TABLE planner_slots
    ADD COLUMN released_by text CHECK (released_by IN ('planner', 'queue'));

-- no change of the queue applies at version 0, so a slot released at 0 was the planner's
UPDATE planner_slots SET released_by = CASE WHEN queue_version = 0 THEN 'planner' ELSE 'queue' END
    WHERE released;
