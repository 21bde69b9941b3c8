-- The queue's stats count the accounts a person must reconnect every few seconds: keep that
-- count off the (large) rest of the accounts table.
CREATE INDEX accounts_needing_reconnect ON accounts (platform) WHERE status = 'needs_reconnect';
