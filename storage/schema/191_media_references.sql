-- Which events mention which media (every mxc:// URI in an event's content, written with the
-- event), so the retention purge can delete the local media that only expired events used.
CREATE TABLE media_references (
    mxc TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (mxc, event_id)
);
CREATE INDEX media_references_event ON media_references (event_id);
-- Media uploaded up to this time may be used by events written before the references were
-- kept: the purge never deletes it.
CREATE TABLE media_references_start (
    after_ts BIGINT NOT NULL
);
INSERT INTO media_references_start (after_ts) SELECT COALESCE(MAX(created_ts), 0) FROM media;
-- Media whose rows the purge deleted and whose files (content, thumbnails) are still to be
-- removed from disk: written in the purge's transaction, cleared once the files are gone.
CREATE TABLE media_deletions (
    media_id TEXT PRIMARY KEY,
    size BIGINT NOT NULL
);
CREATE INDEX profiles_avatar ON profiles (avatar_url);
