-- The planner reads a post's earlier targets by post id (an event reusing an upstreamId for
-- other accounts is rejected): without this, every batch read the whole table.
CREATE INDEX IF NOT EXISTS planner_slots_post ON planner_slots (post_id);
