-- Retry budgets, quota-wait alerts, dead letters an operator can replay, alerts to deliver.

ALTER TABLE targets
    -- retryable failures and expired leases so far (quota and reconnect waits do not count)
    ADD COLUMN failures integer NOT NULL DEFAULT 0,
    -- when the current wait on a quota began, and whether that wait has been alerted
    ADD COLUMN deferred_since timestamptz,
    ADD COLUMN quota_alerted boolean NOT NULL DEFAULT false;

CREATE INDEX attempts_at ON attempts (at);
CREATE INDEX inbox_seen_at ON inbox (seen_at);

-- Every message a consumer could not process, kept whole (key, payload, headers) to replay.
CREATE TABLE dead_letters (
    id                bigserial PRIMARY KEY,
    consumer          text NOT NULL,
    reason            text NOT NULL,
    message           text NOT NULL,
    source_topic      text NOT NULL,
    source_partition  integer,
    source_offset     bigint,
    key               bytea,
    payload           bytea NOT NULL,
    headers           jsonb NOT NULL DEFAULT '{}'::jsonb,
    failed_at         timestamptz NOT NULL,
    stored_at         timestamptz NOT NULL DEFAULT now(),
    replays           integer NOT NULL DEFAULT 0,
    replayed_at       timestamptz
);

-- the dead-letter topic is read at least once: one row per failed record
CREATE UNIQUE INDEX dead_letters_source
    ON dead_letters (consumer, source_topic, source_partition, source_offset);

-- Alerts received by the notifier (one per alert id), and their delivery to each webhook.
CREATE TABLE alerts (
    alert_id     uuid PRIMARY KEY,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_deliveries (
    alert_id         uuid NOT NULL REFERENCES alerts (alert_id),
    webhook          text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    -- the notifier's own timer: null once delivered or given up
    next_attempt_at  timestamptz,
    delivered_at     timestamptz,
    last_error       text,
    PRIMARY KEY (alert_id, webhook)
);

CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
