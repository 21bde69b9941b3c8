-- post.planned messages the planner sent whose post the queue has not stored yet. The broker may
-- lose a message it acknowledged (a topic deleted, a log truncated); the planner sends such a
-- post again until the queue has it, then forgets it. Only unconfirmed posts are kept.
CREATE TABLE planner_unconfirmed (
    post_id     uuid PRIMARY KEY,
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}'::jsonb,  -- the trace context it was sent in
    planned_at  timestamptz NOT NULL DEFAULT now(),
    resend_at   timestamptz NOT NULL,
    resends     integer NOT NULL DEFAULT 0
);

CREATE INDEX planner_unconfirmed_resend_at ON planner_unconfirmed (resend_at);
