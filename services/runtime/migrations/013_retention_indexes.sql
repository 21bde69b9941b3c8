-- What the queue's housekeeping prunes (services/queue/housekeeping.py) is found by its age, a
-- batch at a time, without reading the rest of each table.

-- dead letters: not replayed, by when they were kept; replayed, by their last replay
CREATE INDEX IF NOT EXISTS dead_letters_unreplayed_stored_at ON dead_letters (stored_at)
    WHERE replayed_at IS NULL;
CREATE INDEX IF NOT EXISTS dead_letters_replayed_at ON dead_letters (replayed_at)
    WHERE replayed_at IS NOT NULL;

-- alerts by when they were received (their deliveries by the alert_deliveries primary key)
CREATE INDEX IF NOT EXISTS alerts_received_at ON alerts (received_at);

-- remote handles by their last write (their targets by the targets primary key)
CREATE INDEX IF NOT EXISTS remote_handles_updated_at ON remote_handles (updated_at);

-- rolling-window reservations of any bucket by their time (quota_reservations_window starts
-- with the bucket and scope, for the ledger's own reads)
CREATE INDEX IF NOT EXISTS quota_reservations_reserved_at ON quota_reservations (reserved_at);
