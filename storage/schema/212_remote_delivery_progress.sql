-- For each room and user of another server: the stream position (here) of the newest marked
-- event of ours in the room their node reported delivered (EDU in.gov.broker.delivery).  One
-- row per room and remote user, as receipts are, never one per message
-- (broker/apps/remote_progress.py); written in batches, read at start.
CREATE TABLE remote_delivery_progress (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
