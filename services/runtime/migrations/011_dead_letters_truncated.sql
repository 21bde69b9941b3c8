-- A dead letter of a record too large to carry whole keeps only its payload's first part: such a
-- letter is marked, with the whole payload's size, so that it is never replayed as if complete.
ALTER TABLE dead_letters
    ADD COLUMN truncated     boolean NOT NULL DEFAULT false,
    ADD COLUMN payload_bytes integer;
