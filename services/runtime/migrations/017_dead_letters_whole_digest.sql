-- A letter too large to keep whole keeps the first 64 KiB of its payload (011), and the index of
-- 015 tells records at one source position apart by the digest of the payload kept: two
-- different records there whose first 64 KiB are the same (a topic deleted and recreated) were
-- kept as one. A letter now carries the SHA-256 of its record's whole value (`payloadSha256`),
-- kept here in hex; a letter kept whole has it from its payload, so the rows kept so far get it
-- too (a copy of one of them read again after this is still a copy). A truncated letter from an
-- older producer has none and is told apart by the part kept, as before. A SHA-256 in hex (64
-- characters) never equals an md5 (32).
ALTER TABLE dead_letters
    ADD COLUMN payload_sha256 text CHECK (payload_sha256 ~ '^[0-9a-f]{64}$');

UPDATE dead_letters SET payload_sha256 = encode(sha256(payload), 'hex') WHERE NOT truncated;

DROP INDEX dead_letters_source_record;

CREATE UNIQUE INDEX dead_letters_source_whole_record
    ON dead_letters (consumer, source_topic, source_partition, source_offset,
                     coalesce(payload_sha256, md5(payload)), coalesce(md5(key), ''))
    WHERE source_offset IS NOT NULL;
