-- One-time codes sent by email (verification by official email, a first or forgotten
-- password).  Only a keyed hash of each code is kept; a code expires, takes a few wrong tries
-- and is used once (``used_ts``).  Rows stay after use: the audit log names their ``sid``.
CREATE TABLE email_codes (
    sid TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id TEXT NOT NULL,
    address TEXT NOT NULL,
    org_id TEXT,
    code_hash TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_ts BIGINT
);
CREATE INDEX email_codes_user ON email_codes (user_id, created_ts);

-- Requests for verification by official email waiting for (or decided by) a verifier of
-- their organisation: ``state`` is pending, approved or denied.  IDs sort by creation time.
CREATE TABLE verification_requests (
    request_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    decided_by TEXT,
    decided_ts BIGINT,
    reason TEXT
);
CREATE INDEX verification_requests_org ON verification_requests (org_id, state, request_id);
CREATE INDEX verification_requests_user ON verification_requests (user_id, state);
