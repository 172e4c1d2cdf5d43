-- The outbound federation queue: what this node still owes each destination server.
--
-- Every queued item takes a position from one node-wide counter (federation_queue_position),
-- allocated inside the enqueueing transaction, so positions only ever grow, survive restarts and
-- are handed out in commit order even with several writers (the counter row is locked until
-- commit).  A row is deleted in the transaction that acknowledges the /send transaction that
-- carried it; that same transaction advances the destination's last_acked_position.
CREATE TABLE federation_queue_position (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
INSERT INTO federation_queue_position (id, position) VALUES (1, 0);

-- PDUs waiting to be sent to a destination (the signed PDU as JSON text).
CREATE TABLE federation_outbound_pdus (
    destination TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    pdu_json TEXT NOT NULL,
    PRIMARY KEY (destination, position)
);

-- EDUs that must survive a restart (device list updates, to-device messages).  edu_key is '' for
-- an EDU that nothing replaces; a newer EDU with the same (destination, edu_type, edu_key)
-- replaces the pending one.  Ephemeral EDUs (typing, receipts) are only kept in memory.
CREATE TABLE federation_outbound_edus (
    destination TEXT NOT NULL,
    position BIGINT NOT NULL,
    edu_type TEXT NOT NULL,
    edu_key TEXT NOT NULL,
    content_json TEXT NOT NULL,
    PRIMARY KEY (destination, position)
);
CREATE INDEX federation_outbound_edus_key
    ON federation_outbound_edus (destination, edu_type, edu_key);

-- Per-destination delivery state: the highest position the destination acknowledged, and the
-- back-off after failures (retry no earlier than retry_last_ts + retry_interval_ms).
CREATE TABLE federation_destinations (
    destination TEXT PRIMARY KEY,
    last_acked_position BIGINT NOT NULL,
    retry_last_ts BIGINT NOT NULL,
    retry_interval_ms BIGINT NOT NULL,
    failure_count INTEGER NOT NULL
)
