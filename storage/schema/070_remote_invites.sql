-- Invites of local users to rooms on other servers (rooms this node is not in yet). The invite
-- event, countersigned by us, and the stripped room state the inviting server sent.
CREATE TABLE remote_invites (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_version TEXT NOT NULL,
    event_json TEXT NOT NULL,
    invite_state TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
CREATE INDEX remote_invites_stream ON remote_invites (user_id, stream_id);
