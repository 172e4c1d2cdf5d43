-- Initial schema, shared by SQLite and PostgreSQL.  Types are chosen so that one text serves both
-- engines (SQLite accepts BIGINT, BOOLEAN and BYTEA as declared types).
-- Every change that clients see through /sync carries a stream_id taken from one monotonically
-- increasing stream (see storage/stream.py).

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    created_ts BIGINT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_guest BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE profiles (
    user_id TEXT PRIMARY KEY,
    displayname TEXT,
    avatar_url TEXT
);

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    created_ts BIGINT NOT NULL,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT NOT NULL,
    is_public BOOLEAN NOT NULL DEFAULT FALSE,
    created_ts BIGINT NOT NULL
);

-- Every event we hold, in federation (PDU) format.
CREATE TABLE events (
    stream_ordering BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    json TEXT NOT NULL,
    outlier BOOLEAN NOT NULL DEFAULT FALSE,
    redacted_by TEXT
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
CREATE INDEX events_room_depth ON events (room_id, depth, stream_ordering);
CREATE INDEX events_membership ON events (state_key, type, stream_ordering);

-- Events with no children yet, per room: the prev_events of the next event.
CREATE TABLE forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- Room state as a chain of deltas: a group holds its delta against prev_group (or the full state
-- when prev_group is NULL).  Each event maps to the group of the state *after* it.
CREATE TABLE state_groups (
    id BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL,
    prev_group BIGINT,
    delta_depth INTEGER NOT NULL
);
CREATE TABLE state_groups_state (
    state_group BIGINT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (state_group, type, state_key)
);
CREATE TABLE event_to_state_groups (
    event_id TEXT PRIMARY KEY,
    state_group BIGINT NOT NULL
);

CREATE TABLE current_state_events (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX current_state_members ON current_state_events (state_key, membership);

CREATE TABLE room_aliases (
    room_alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

CREATE TABLE event_txn_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, room_id, txn_id)
);

CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL DEFAULT '',
    event_id TEXT NOT NULL,
    data TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_stream ON receipts (stream_id);

-- Global account data has room_id ''.  Room tags are the per-room type m.tag.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_stream ON account_data (user_id, stream_id);

CREATE TABLE user_filters (
    user_id TEXT NOT NULL,
    filter_id BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);

CREATE TABLE push_rules (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    rule_json TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (user_id, kind, rule_id)
);
CREATE TABLE push_rules_enable (
    user_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    enabled BOOLEAN,
    actions TEXT,
    PRIMARY KEY (user_id, rule_id)
);

CREATE TABLE media (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    upload_name TEXT,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE TABLE media_thumbnails (
    media_id TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    method TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (media_id, width, height, method)
);

CREATE TABLE event_reports (
    id BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL,
    event_id TEXT,
    reported_user_id TEXT,
    user_id TEXT NOT NULL,
    reason TEXT,
    score INTEGER,
    received_ts BIGINT NOT NULL
);
