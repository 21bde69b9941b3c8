-- What each post was planned to post (its content, each target's caption and hashtags): the
-- planner's own record for refusing an event that reuses an upstreamId with other content
-- (`reject_if_edited`, services/planner/domain/_plan_content.py). Until now the planner read it
-- from planner_unconfirmed, then from the queue's posts and targets, so a post it gave up on (the
-- queue never stored it) had none, and an edit of it was planned anew. Written in the transaction
-- that books the post's slots; kept as long as any of them (services/queue/housekeeping.py).
CREATE TABLE planner_post_contents (
    post_id     uuid PRIMARY KEY,
    content     jsonb NOT NULL,  -- post.planned's `content`, as on the wire
    texts       jsonb NOT NULL,  -- per target: [{platform, accountId, caption, hashtags}]
    planned_at  timestamptz NOT NULL DEFAULT now()  -- its slots' (the prune of its orphans reads it)
);

-- The posts planned so far (those the check reads: the ones with slots), from where the planner
-- read them until now, in the same order: the post.planned it still sends, else the queue's
-- record. All three statements below read the very values that read did, so nothing is guessed.
CREATE TEMPORARY TABLE planned_before ON COMMIT DROP AS
    SELECT post_id, min(planned_at) AS planned_at FROM planner_slots GROUP BY post_id;

-- a PlannedTarget on the wire, as this table keeps it
CREATE FUNCTION pg_temp.text_of(target jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('platform', target->'platform', 'accountId', target->'accountId',
                              'caption', target->'caption', 'hashtags', coalesce(target->'hashtags', '[]'))
$$;

INSERT INTO planner_post_contents (post_id, content, texts, planned_at)
SELECT u.post_id, m.planned->'content',
       (SELECT jsonb_agg(pg_temp.text_of(t)) FROM jsonb_array_elements(m.planned->'targets') AS t),
       s.planned_at
  FROM planner_unconfirmed u
  JOIN planned_before s USING (post_id)
  CROSS JOIN LATERAL (SELECT convert_from(u.payload, 'UTF8')::jsonb AS planned) AS m;

INSERT INTO planner_post_contents (post_id, content, texts, planned_at)
SELECT p.post_id, p.content,
       jsonb_agg(jsonb_build_object('platform', t.platform, 'accountId', t.account_id,
                                    'caption', t.caption, 'hashtags', to_jsonb(t.hashtags))),
       s.planned_at
  FROM posts p
  JOIN targets t USING (post_id)
  JOIN planned_before s USING (post_id)
 GROUP BY p.post_id, s.planned_at
ON CONFLICT (post_id) DO NOTHING;

-- A post given up before this (neither being sent nor stored) had no record at all; its dead
-- letter, while kept, holds the post.planned the planner sent (the last one, if given up twice).
-- A truncated letter does not hold it whole: such a post stays without a record, as before.
INSERT INTO planner_post_contents (post_id, content, texts, planned_at)
SELECT DISTINCT ON (s.post_id) s.post_id, m.planned->'content',
       (SELECT jsonb_agg(pg_temp.text_of(t)) FROM jsonb_array_elements(m.planned->'targets') AS t),
       s.planned_at
  FROM dead_letters d
  CROSS JOIN LATERAL (SELECT convert_from(d.payload, 'UTF8')::jsonb AS planned) AS m
  JOIN planned_before s ON s.post_id = (m.planned->>'postId')::uuid
 WHERE d.consumer = 'planner.recovery' AND d.reason = 'post_not_queued' AND NOT d.truncated
 ORDER BY s.post_id, d.failed_at DESC
ON CONFLICT (post_id) DO NOTHING;

DROP FUNCTION pg_temp.text_of(jsonb);  -- the migrating session may be a pooled one
