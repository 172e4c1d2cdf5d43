-- Auto-delete messages not yet redacted: when each is due (ms since the epoch).  Written in the
-- event's own transaction, removed in the redaction's, so a restart resumes where it stopped.
CREATE TABLE event_expiry (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    expires_ts BIGINT NOT NULL
);
CREATE INDEX event_expiry_due ON event_expiry (expires_ts);
