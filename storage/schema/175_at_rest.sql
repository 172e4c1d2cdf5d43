-- Encryption at rest.  The keys themselves never live here: only the IDs of the keys data may
-- be sealed with (a node refuses to start with a keyring that lacks one of them).
CREATE TABLE at_rest_keys (
    key_id TEXT PRIMARY KEY,
    added_ts BIGINT NOT NULL
);

-- A key rotation: every sealed column and the media files re-sealed under target_key_id, a
-- batch at a time.  Each part (a table's column, the media files) keeps the primary key of the
-- last row it re-sealed, written in the batch's transaction, so a rotation stopped anywhere
-- goes on from there.  A part is done when a whole pass, started once every node had time to
-- take up the new key, found nothing left to re-seal.
CREATE TABLE at_rest_rotations (
    rotation_id BIGINT PRIMARY KEY,
    target_key_id TEXT NOT NULL,
    started_ts BIGINT NOT NULL,
    done_ts BIGINT
);

CREATE TABLE at_rest_rotation_parts (
    rotation_id BIGINT NOT NULL,
    part TEXT NOT NULL,
    position TEXT,
    resealed BIGINT NOT NULL DEFAULT 0,
    passes INTEGER NOT NULL DEFAULT 0,
    pass_started_ts BIGINT NOT NULL,
    pass_resealed BIGINT NOT NULL DEFAULT 0,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (rotation_id, part)
);
