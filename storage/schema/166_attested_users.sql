-- What the node last told other nodes of each of its verified users (the attestation its
-- joins carry: organisation and since when); no row: public.  At start, a user whose
-- attestation differs now (revoked, expired, verified or moved while the node was stopped)
-- has their joins restated (broker/restatements.py).
CREATE TABLE attested_users (
    user_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    since BIGINT NOT NULL
);
