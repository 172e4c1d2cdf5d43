-- User-interactive authentication sessions (register, password change, device deletion,
-- deactivation).  Kept in the database rather than in memory so that any worker process can
-- continue a session another one started.  user_id is '' for unauthenticated requests (register).
CREATE TABLE ui_auth_sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    method TEXT NOT NULL,
    uri TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX ui_auth_sessions_created ON ui_auth_sessions (created_ts);

-- Stages completed in a session, with what each proved (a user ID for m.login.password).
CREATE TABLE ui_auth_stages (
    session_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (session_id, stage)
);
