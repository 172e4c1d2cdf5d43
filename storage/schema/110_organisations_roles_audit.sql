-- Organisations (a tree of any depth), who works for which, role grants and the audit log.

-- An organisation: a ministry, department, directorate, district office...  ``parent_id`` is
-- NULL for a top-level one.  ``names`` (other languages) and ``settings`` are JSON objects.
CREATE TABLE organisations (
    org_id TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES organisations (org_id),
    name TEXT NOT NULL,
    names TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    updated_ts BIGINT NOT NULL
);
CREATE INDEX organisations_parent ON organisations (parent_id);

-- Email domains an organisation owns: a domain belongs to one organisation at most.
CREATE TABLE organisation_email_domains (
    domain TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (org_id)
);
CREATE INDEX organisation_email_domains_org ON organisation_email_domains (org_id);

-- The organisation a user works for (at most one), with the account details that go with it.
CREATE TABLE organisation_members (
    user_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (org_id),
    designation TEXT,
    employee_id TEXT,
    email TEXT,
    phone TEXT,
    updated_ts BIGINT NOT NULL
);
CREATE INDEX organisation_members_org ON organisation_members (org_id);

-- The digest of the organisations file last applied at start (see docs/admin/organisations.md).
CREATE TABLE organisation_sources (
    source TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    applied_ts BIGINT NOT NULL
);

-- Role grants: ``org_id`` is '' for a grant over the whole node, else the organisation whose
-- sub-tree the grant covers.
CREATE TABLE role_grants (
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    org_id TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, role, org_id)
);
CREATE INDEX role_grants_role ON role_grants (role);

-- Node admins from before roles existed hold node_admin over the whole node.
INSERT INTO role_grants (user_id, role, org_id, granted_by, granted_ts)
    SELECT user_id, 'node_admin', '', 'migration', created_ts FROM users WHERE is_admin;

-- The audit log: entries are only ever appended.  Each holds the hash of the one before it
-- (``prev_hash``, '' for the first) and its own hash over its canonical JSON.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    ts BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    org_id TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, seq);

-- The chain's head in one row: an append updates it first, so appends are serialised (a
-- PostgreSQL row lock, SQLite's single writer) and the chain never forks.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

-- Signatures of the chain's head with the node's signing key, made periodically.
CREATE TABLE audit_signatures (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    signed_ts BIGINT NOT NULL
);
