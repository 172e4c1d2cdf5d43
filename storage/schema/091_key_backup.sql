-- Server-side key backups: each user's backup versions and the encrypted room keys in them.
-- The node stores what clients encrypted (auth_data and session_data as JSON text) and never
-- sees a plaintext key.  version is a per-user counter (clients see it as an opaque string);
-- a deleted version keeps its row (deleted = TRUE) so its number is never reused and deleting
-- it again succeeds.  etag counts the changes to a version's keys.
CREATE TABLE room_key_backup_versions (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE room_key_backup_keys (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified BOOLEAN NOT NULL,
    session_data TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
);
