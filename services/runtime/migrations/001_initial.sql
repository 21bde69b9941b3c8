-- The queue's record: posts, their targets (post x platform account), attempts, outbox, inbox.

CREATE TABLE posts (
    post_id        uuid PRIMARY KEY,
    upstream_id    text NOT NULL UNIQUE,
    content        jsonb NOT NULL,
    -- W3C trace context of the content event: later spans for this post continue its trace
    trace_context  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE targets (
    target_id            uuid PRIMARY KEY,
    post_id              uuid NOT NULL REFERENCES posts (post_id),
    platform             text NOT NULL,
    account_id           text NOT NULL,
    caption              text NOT NULL,
    hashtags             text[] NOT NULL DEFAULT '{}',
    scheduled_time       timestamptz NOT NULL,
    expected_engagement  double precision NOT NULL DEFAULT 0,
    strategy             text NOT NULL,
    status               text NOT NULL CHECK (status IN ('pending', 'publishing', 'processing',
                             'posted', 'failed', 'retry_wait', 'deferred', 'cancelled')),
    version              integer NOT NULL DEFAULT 0,
    attempt              integer NOT NULL DEFAULT 0,
    -- the one timer: when the dispatcher must next act (publish, lease expiry, status check)
    due_at               timestamptz,
    status_checks        integer NOT NULL DEFAULT 0,
    remote_handle        jsonb,
    url                  text,
    last_error           jsonb,
    published_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX targets_due_at ON targets (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX targets_post_id ON targets (post_id);
CREATE INDEX targets_status ON targets (status);

CREATE TABLE attempts (
    id           bigserial PRIMARY KEY,
    target_id    uuid NOT NULL REFERENCES targets (target_id),
    attempt      integer NOT NULL,
    outcome      text NOT NULL,
    error_class  text,
    error_code   text,
    message      text,
    trace_id     text,
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX attempts_target_id ON attempts (target_id);

-- Messages written in the same transaction as the state change that caused them.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    key         text NOT NULL,
    payload     bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Message ids already applied, per consumer: redelivered messages change nothing.
CREATE TABLE inbox (
    consumer    text NOT NULL,
    message_id  uuid NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
