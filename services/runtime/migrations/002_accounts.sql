-- Accounts, their encrypted tokens, and the quota ledger (issue 4; remote handles are in 002a).

CREATE TABLE accounts (
    platform        text NOT NULL,
    account_id      text NOT NULL,
    display_name    text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'connected', 'needs_reconnect', 'removed')),
    status_reason   text,
    scopes          text[] NOT NULL DEFAULT '{}',
    remote_user_id  text,  -- TikTok open_id, Instagram user id
    connected_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, account_id)
);

-- One row per connected account. Tokens are AES-GCM ciphertexts that name their key
-- (services.accounts.Keyring); key_id repeats it so a rotation finds what to re-seal.
CREATE TABLE credentials (
    platform            text NOT NULL,
    account_id          text NOT NULL,
    access_token        bytea NOT NULL,
    refresh_token       bytea,
    key_id              text NOT NULL,
    access_expires_at   timestamptz,
    refresh_expires_at  timestamptz,
    issued_at           timestamptz NOT NULL,
    -- +1 on every new pair: a refresher that locked the row sees whether someone else refreshed
    version             bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (platform, account_id),
    FOREIGN KEY (platform, account_id) REFERENCES accounts (platform, account_id) ON DELETE CASCADE
);

CREATE INDEX credentials_key_id ON credentials (key_id);

-- The quota ledger (services.quotas). scope is the account id for per-account caps, '' for
-- app-wide ones (YouTube's project quota).
-- Rolling 24 h caps (TikTok posts per creator, Instagram posts per account): one row per post,
-- keyed so a retried target counts once, aged out by reserved_at.
CREATE TABLE quota_reservations (
    bucket           text NOT NULL,
    scope            text NOT NULL,
    reservation_key  text NOT NULL,  -- target id (one post per target), or one call's own id
    units            integer NOT NULL CHECK (units > 0),
    reserved_at      timestamptz NOT NULL,
    PRIMARY KEY (bucket, scope, reservation_key)
);

CREATE INDEX quota_reservations_window ON quota_reservations (bucket, scope, reserved_at);

-- Daily quotas that reset at a fixed time (YouTube units and uploads, midnight Pacific): one
-- counter per window, taken with a single conditional upsert.
CREATE TABLE quota_counters (
    bucket        text NOT NULL,
    scope         text NOT NULL,
    window_start  timestamptz NOT NULL,
    used          integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (bucket, scope, window_start)
);

-- Limits learnt from the platform at run time (Instagram's content_publishing_limit quota_total).
CREATE TABLE quota_limits (
    bucket      text NOT NULL,
    scope       text NOT NULL,
    quota_total integer NOT NULL CHECK (quota_total >= 0),
    learned_at  timestamptz NOT NULL,
    PRIMARY KEY (bucket, scope)
);
