-- Retention: events whose content the purge removed (stored pruned, as a redaction leaves
-- them).  The partial index holds the non-state events not yet purged, oldest first per room,
-- so each batch of the purge reads only what is left to do and a restart goes on from there.
ALTER TABLE events ADD COLUMN retention_purged BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX events_retention_pending ON events (room_id, origin_server_ts)
    WHERE state_key IS NULL AND retention_purged = FALSE;
