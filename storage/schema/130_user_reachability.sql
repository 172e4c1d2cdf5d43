-- Whether a verified user may be reached by public users (invited, asked into a direct chat),
-- as their organisation's admin forced it; no row: the user's own choice holds (account data
-- in.gov.broker.reachability).
CREATE TABLE user_reachability (
    user_id TEXT PRIMARY KEY,
    reachable_by_public BOOLEAN NOT NULL,
    set_by TEXT NOT NULL,
    set_ts BIGINT NOT NULL
);
