-- Notices of other nodes (events carrying in.gov.broker.notice) that a user of this node has
-- not yet received: reported to their origin once a device of the user syncs past them
-- (broker/apps/delivery_reports.py).  Written in batches every second, read at start, so a
-- restart still reports them.
CREATE TABLE delivery_pending (
    user_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (user_id, event_id)
);
