-- Accounts the node holds for organisations (one per organisation, made on first use): the
-- sender of what an organisation publishes (its image pack room, later its notices).  Nobody
-- logs in as one: the account has no password and no device.
CREATE TABLE organisation_accounts (
    org_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE,
    created_ts BIGINT NOT NULL
);

-- Each organisation's image pack room (MSC2545 packs are its state), made with its first pack.
CREATE TABLE image_pack_rooms (
    org_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL UNIQUE,
    created_ts BIGINT NOT NULL
);

-- The job bringing an organisation's members up to date with its packs (joined to the room,
-- the packs listed in their account data): members are taken in user ID order after
-- ``after_user``, a batch at a time, so a stopped job goes on from there after a restart.  A
-- new change restarts it (``generation`` + 1, from the first member).
CREATE TABLE image_pack_jobs (
    org_id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    after_user TEXT NOT NULL,
    done BIGINT NOT NULL,
    total BIGINT NOT NULL,
    started_ts BIGINT NOT NULL,
    finished_ts BIGINT
);
