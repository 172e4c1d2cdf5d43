-- Rooms shut down by an admin (the admin API's room shutdown): nobody on this node may join
-- them, be invited to them, send into them or give them an alias, and the node refuses joins
-- and invites to them over federation.  Rows are never deleted: a shut down room stays blocked.
CREATE TABLE blocked_rooms (
    room_id TEXT PRIMARY KEY,
    blocked_by TEXT NOT NULL,
    blocked_ts BIGINT NOT NULL,
    reason TEXT
);

-- A report is open until an admin resolves it: who resolved it, when, and what they decided.
ALTER TABLE event_reports ADD COLUMN resolved_ts BIGINT;
ALTER TABLE event_reports ADD COLUMN resolved_by TEXT;
ALTER TABLE event_reports ADD COLUMN resolution TEXT;
CREATE INDEX event_reports_room ON event_reports (room_id, id);
