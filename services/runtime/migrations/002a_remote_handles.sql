-- Issue 4 (platforms): what each publisher created on a platform, written the moment the
-- platform answered and before the next step, so a killed publisher or a re-driven request
-- resumes that remote object (or checks its state) instead of posting the target twice.
-- No foreign key to targets: one-off publishes (`autopost publish-once`) have no target row.

CREATE TABLE remote_handles (
    target_id         uuid NOT NULL,
    -- 1, 2, …: a new generation only after the platform gave up on the previous object
    generation        integer NOT NULL,
    platform          text NOT NULL,
    account_id        text NOT NULL,
    attempt           integer NOT NULL,  -- the attempt that wrote the row last
    stage             text NOT NULL CHECK (stage IN ('intent', 'created', 'uploaded', 'publishing',
                                                     'accepted', 'abandoned')),
    kind              text NOT NULL,     -- tiktok.publish_id, instagram.container, youtube.session, …
    remote_id         text NOT NULL DEFAULT '',  -- empty while the create call awaits its answer
    -- what resuming needs: upload URL and chunk plan, container ids, session URI and size
    extra             jsonb NOT NULL DEFAULT '{}'::jsonb,
    abandoned_reason  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_id, generation)
);

CREATE INDEX remote_handles_remote_id ON remote_handles (platform, remote_id) WHERE remote_id <> '';

-- Who is publishing a target right now. A second publisher that gets the same target (a request
-- re-driven after a rebalance) leaves it until the claim lapses instead of racing the first.
CREATE TABLE publish_claims (
    target_id      uuid PRIMARY KEY,
    owner          text NOT NULL,
    attempt        integer NOT NULL,
    claimed_until  timestamptz NOT NULL
);
