-- Engagement: the queue collects it from posted targets on their one timer; the planner keeps
-- what it planned and what each post earned, and learns its estimates from that.

-- engagement collections of a posted target done (or given up); its due_at is the next one
ALTER TABLE targets ADD COLUMN engagement_checks integer NOT NULL DEFAULT 0;

-- The planner's record of every slot it gave a target: one slot per target (a replayed event
-- gets the same slot), and what spacing, daily caps and quota windows are checked against.
CREATE TABLE planner_slots (
    target_id            uuid PRIMARY KEY,
    post_id              uuid NOT NULL,
    platform             text NOT NULL,
    account_id           text NOT NULL,
    content_type         text NOT NULL,
    timezone             text NOT NULL,  -- the audience's, to read the slot's local hour
    slot_at              timestamptz NOT NULL,
    expected_engagement  double precision NOT NULL,
    strategy             text NOT NULL,
    planned_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX planner_slots_account ON planner_slots (platform, account_id, slot_at);

-- What each posted target earned at each collection age, normalised by audience size when the
-- platform gave one. Applied once per message id; one row per target and age.
CREATE TABLE engagement_observations (
    message_id           uuid PRIMARY KEY,
    target_id            uuid NOT NULL,
    platform             text NOT NULL,
    account_id           text NOT NULL,
    content_type         text NOT NULL,
    hour_of_week         smallint NOT NULL CHECK (hour_of_week BETWEEN 0 AND 167),
    published_at         timestamptz NOT NULL,
    age_seconds          double precision NOT NULL,
    final                boolean NOT NULL,
    views                bigint,
    interactions         bigint NOT NULL,
    audience_size        bigint,
    rate                 double precision,  -- interactions per audience member; NULL: no audience size
    expected_engagement  double precision NOT NULL,
    strategy             text NOT NULL,
    observed_at          timestamptz NOT NULL,
    recorded_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, age_seconds)
);

CREATE INDEX engagement_observations_account ON engagement_observations (platform, account_id, published_at);
