-- Broadcasts from the portal (broker/broadcasts/): one row per broadcast, its recipients
-- fixed when it is sent (one row each, in ``seq`` order), each filled in with the room and
-- event that carried the message to them.  Delivery and reading are not rows: they are read
-- from the recipients' sync progress and their rooms' read receipts when asked.
CREATE TABLE broadcasts (
    broadcast_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    sent_by TEXT NOT NULL,
    room_name TEXT NOT NULL,
    content TEXT NOT NULL,
    audience TEXT NOT NULL,
    leave_allowed BOOLEAN NOT NULL,
    recipients BIGINT NOT NULL,
    done BIGINT NOT NULL,
    created_ts BIGINT NOT NULL,
    finished_ts BIGINT
);
CREATE INDEX broadcasts_org ON broadcasts (org_id, created_ts);

CREATE TABLE broadcast_recipients (
    broadcast_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    room_id TEXT,
    event_id TEXT,
    stream_ordering BIGINT,
    PRIMARY KEY (broadcast_id, seq)
);
