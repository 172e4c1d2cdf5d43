-- To-device messages waiting for a local device (send-to-device messaging).  One row per
-- recipient device and stream position: a request or an inbound m.direct_to_device EDU takes
-- one stream id, and gives each device at most one message.  delivered_token is the sync
-- position (next_batch) of the first /sync response that carried the message; the row is
-- deleted once the device syncs with a since token at or after it (the acknowledgement).
-- received_ts lets undelivered messages expire (retention.undelivered_to_device_days).
CREATE TABLE to_device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    delivered_token BIGINT,
    PRIMARY KEY (user_id, device_id, stream_id)
);
CREATE INDEX to_device_inbox_received ON to_device_inbox (received_ts);
CREATE INDEX to_device_inbox_stream ON to_device_inbox (stream_id);

-- What has already been delivered, so a retry is not delivered twice: scope is
-- 'txn <user_id> <device_id>' with key the client's transaction id for /sendToDevice, or
-- 'edu <origin server>' with key the EDU's message_id.  Rows older than the retention period
-- are purged with the messages.
CREATE TABLE to_device_seen (
    scope TEXT NOT NULL,
    seen_key TEXT NOT NULL,
    seen_ts BIGINT NOT NULL,
    PRIMARY KEY (scope, seen_key)
);
CREATE INDEX to_device_seen_ts ON to_device_seen (seen_ts);
