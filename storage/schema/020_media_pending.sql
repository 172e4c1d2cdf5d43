-- Media IDs reserved with POST /_matrix/media/v1/create whose content has not been uploaded yet.
-- A row lives until the content arrives (it then moves to `media`) or it expires.
CREATE TABLE media_pending (
    media_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL
);
CREATE INDEX media_pending_user ON media_pending (user_id, expires_ts);
CREATE INDEX media_user ON media (user_id, created_ts);
