-- The highest stream position some device of each user has confirmed receiving (a /sync asked
-- with a `since` at or past it): kept in memory on the sync path, written here in batches
-- (broker/sync_progress.py), read once at start.
CREATE TABLE sync_progress (
    user_id TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

-- Each message an eGov application sent and its delivery status (broker/apps/tracking.py):
-- queued, delivered, read, expired or failed, with the times it was delivered and read.
-- room_id/event_id/position are set once the message is in its room (position: the
-- event's stream position on this node).
CREATE TABLE app_messages (
    message_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL,
    room_id TEXT,
    event_id TEXT,
    position BIGINT,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT,
    delivered_ts BIGINT,
    read_ts BIGINT,
    reason TEXT
);
CREATE INDEX app_messages_open ON app_messages (status, room_id);
CREATE INDEX app_messages_event ON app_messages (event_id);

-- Callbacks to applications not yet answered with a 2xx: one per status change of a message
-- (broker/apps/callbacks.py), written in the transaction of the change, deleted once
-- delivered; a restart resumes them.
CREATE TABLE app_callbacks (
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    app_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_ts BIGINT NOT NULL,
    PRIMARY KEY (message_id, status)
);
CREATE INDEX app_callbacks_due ON app_callbacks (next_ts);
