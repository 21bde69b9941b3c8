-- A dead letter of a message that was never consumed (the planner's post the queue never stored)
-- has no source position, and NULLs are distinct in the index on it: such a letter read twice
-- from the dead-letter topic would be kept twice. The same letter has the same failure time and
-- payload; a new failure of the same message (after a replay) has its own time.
CREATE UNIQUE INDEX dead_letters_unconsumed
    ON dead_letters (consumer, source_topic, failed_at, md5(payload))
    WHERE source_offset IS NULL;
