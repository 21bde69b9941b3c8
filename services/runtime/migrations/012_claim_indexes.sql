-- The dispatcher's claims and its wake-up time read only the targets they may take. With only
-- targets_due_at, a backlog due but held back (a platform at its in-flight limit) was read and
-- filtered out on every round and every wake, inside the claiming transaction. Each index holds
-- exactly the rows of one query's predicate (services/queue/repository.py, _FOLLOWING and
-- _TO_PUBLISH: the statuses and platforms there and here must stay the same; a test checks the
-- plans). targets_due_at stays, for the claim without an in-flight limit (oldest first, any kind).

-- targets followed on their timer: status checks, leases, engagement collections
CREATE INDEX IF NOT EXISTS targets_due_following ON targets (due_at)
    WHERE due_at IS NOT NULL AND status NOT IN ('deferred', 'pending', 'retry_wait');

-- each platform's targets waiting to be published (claimed no more than its room). One index per
-- platform on due_at, not one on (platform, due_at): that one can look dearer to the planner than
-- targets_due_at when the heap is in due order, and a held-back backlog would be read again.
-- A new platform needs its own.
CREATE INDEX IF NOT EXISTS targets_due_to_publish_tiktok ON targets (due_at)
    WHERE due_at IS NOT NULL AND platform = 'tiktok' AND status IN ('deferred', 'pending', 'retry_wait');
CREATE INDEX IF NOT EXISTS targets_due_to_publish_instagram ON targets (due_at)
    WHERE due_at IS NOT NULL AND platform = 'instagram' AND status IN ('deferred', 'pending', 'retry_wait');
CREATE INDEX IF NOT EXISTS targets_due_to_publish_youtube ON targets (due_at)
    WHERE due_at IS NOT NULL AND platform = 'youtube' AND status IN ('deferred', 'pending', 'retry_wait');

-- Built here, in the migrations' transaction, which CREATE INDEX CONCURRENTLY cannot run in: each
-- build blocks writes to targets while it reads the table once (the four: a quarter of a second
-- for 300,000 targets). On a much larger table, build them beforehand without blocking, by the
-- same names and definitions (CREATE INDEX CONCURRENTLY targets_due_following ON targets ...),
-- and this migration then leaves them as they are. A concurrent build that failed leaves an
-- INVALID index of its name, which this would take as built: drop it and build it again.
