-- A dead letter was kept once per source position. A topic deleted and recreated numbers its
-- records from 0 again, so a new, different record failing at a position used before was
-- dropped as if a copy. The position and the record's key and payload together are one failed
-- record: a copy (the letter read twice, or the record failing again before its offset was
-- committed) has the same key and payload, whatever its failure time. The rows kept so far are
-- unique on the position, so on this too. Letters never consumed keep dead_letters_unconsumed (010).
DROP INDEX dead_letters_source;

CREATE UNIQUE INDEX dead_letters_source_record
    ON dead_letters (consumer, source_topic, source_partition, source_offset,
                     md5(payload), coalesce(md5(key), ''))  -- no key as '', never an md5: NULLs never match
    WHERE source_offset IS NOT NULL;
