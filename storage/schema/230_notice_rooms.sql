-- Read-only notice rooms (broker/notice_rooms.py): one room per (sender, recipient, kind),
-- from a local account (an app's sender or an organisation's account) to a user of this node
-- or another, made on first use and found here after a restart.  ``leave_allowed`` is what
-- the room's in.gov.broker.notice_room state says (a broadcast room's recipient may leave it).
CREATE TABLE notice_rooms (
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    room_id TEXT NOT NULL UNIQUE,
    leave_allowed BOOLEAN NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (sender, recipient, kind)
);
