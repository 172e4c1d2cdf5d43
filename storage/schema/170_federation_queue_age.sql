-- When each outbound federation queue entry was queued, so that entries owed to a server that
-- stays unreachable expire (retention.federation_queue_max_age) and are deleted, never sent
-- late.  Entries queued before this migration have no time: the first expiry run after it
-- stamps them with its own, so they expire a whole max age after the upgrade.
ALTER TABLE federation_outbound_pdus ADD COLUMN queued_ts BIGINT;
ALTER TABLE federation_outbound_edus ADD COLUMN queued_ts BIGINT;
CREATE INDEX federation_outbound_pdus_queued ON federation_outbound_pdus (queued_ts);
CREATE INDEX federation_outbound_edus_queued ON federation_outbound_edus (queued_ts);
-- The retention purge prunes the queued copies of the events it purges (found by event ID).
CREATE INDEX federation_outbound_pdus_event ON federation_outbound_pdus (event_id);
