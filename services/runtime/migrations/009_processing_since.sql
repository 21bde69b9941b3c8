-- When the platform accepted a target: its processing there is given the platform's budget from
-- then, not from its slot (a quota wait can bring the acceptance many hours after the slot).
ALTER TABLE targets ADD COLUMN processing_since timestamptz;
