-- A dead letter of a message that was never consumed (the planner's post the queue never stored)
-- has no source position, and NULLs are distinct in the index on it: such a letter read twice
-- from the dead-letter topic would be kept twice. The same letter has the same failure time and
-- payload; a new failure of the same message (after a replay) has its own time. Copies kept
-- before this are dropped first (the oldest row stays), or the unique index could not be built.
DELETE FROM dead_letters a USING dead_letters b
 WHERE a.source_offset IS NULL AND b.source_offset IS NULL
   AND a.consumer = b.consumer AND a.source_topic = b.source_topic
   AND a.failed_at = b.failed_at AND md5(a.payload) = md5(b.payload)
   AND a.id > b.id;

CREATE UNIQUE INDEX dead_letters_unconsumed
    ON dead_letters (consumer, source_topic, failed_at, md5(payload))
    WHERE source_offset IS NULL;
