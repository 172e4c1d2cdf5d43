-- Verifications of government accounts: who verified a user for which organisation, when, on
-- what basis, until when, and who revoked it.  Rows are never deleted (the history); a user's
-- current verification is the one not revoked (at most one: verifying again revokes the last).
-- ``org_id`` names the organisation as it was (no foreign key: the history outlives it).
CREATE TABLE user_verifications (
    verification_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    basis TEXT NOT NULL,
    verified_by TEXT NOT NULL,
    verified_ts BIGINT NOT NULL,
    expires_ts BIGINT,
    revoked_by TEXT,
    revoked_ts BIGINT
);
CREATE INDEX user_verifications_user ON user_verifications (user_id, verified_ts);
CREATE INDEX user_verifications_current ON user_verifications (revoked_ts);
