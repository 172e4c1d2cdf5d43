-- eGov applications registered by an organisation's app managers (issue 12).  Each has a
-- sender account (``sender``, made in the same transaction, verified in ``org_id``; nobody
-- logs in as it), an API token stored as its SHA-256 hash only, an optional callback URL
-- with its HMAC secret, and the message kinds it may send (a JSON list).  A revoked app
-- keeps its row (``revoked_ts``) so its messages' status stays readable by the audit.
CREATE TABLE apps (
    app_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    org_id TEXT NOT NULL,
    sender TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    callback_url TEXT,
    callback_secret TEXT NOT NULL,
    kinds TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    token_ts BIGINT NOT NULL,
    revoked_ts BIGINT
);
CREATE INDEX apps_org ON apps (org_id);

-- An app's idempotency keys: the message a key was first used for, so a retried request
-- (after a restart too) answers the same message ID and sends nothing.
CREATE TABLE app_idempotency_keys (
    app_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (app_id, idempotency_key)
);

-- Groups an app manages: a room its sender account owns.
CREATE TABLE app_groups (
    group_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    room_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_ts BIGINT NOT NULL
);
CREATE INDEX app_groups_app ON app_groups (app_id, group_id);
