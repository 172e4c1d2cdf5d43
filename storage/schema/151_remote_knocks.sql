-- Knocks of local users on rooms held by other servers (rooms this node is not in). The knock
-- event as sent, the server it went through, and the room state that server answered with,
-- kept until the user is let in (an invite arrives), joins or withdraws the knock.
CREATE TABLE remote_knocks (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_version TEXT NOT NULL,
    server TEXT NOT NULL,
    event_json TEXT NOT NULL,
    knock_state TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
CREATE INDEX remote_knocks_stream ON remote_knocks (user_id, stream_id);
