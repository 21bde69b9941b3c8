-- The queue tells the planner when a target's slot is given up (failed, cancelled) or moved
-- (rescheduled, armed again): spacing and daily caps count only the slots still held.
-- queue_version is the target's version in the queue when it last changed the slot; a change
-- applies only over an older one.
ALTER TABLE planner_slots
    ADD COLUMN released boolean NOT NULL DEFAULT false,
    ADD COLUMN queue_version integer NOT NULL DEFAULT 0;
