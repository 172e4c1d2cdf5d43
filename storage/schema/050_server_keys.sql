-- Signing keys of other servers, fetched from /_matrix/key/v2/server or through a notary.
-- One row per (server, key id): the newest response (largest valid_until_ts) wins.
-- valid_until_ts is the response's validity (capped at fetch time + 7 days); expired_ts is set
-- for keys the server listed under old_verify_keys (then the key verifies only what was signed
-- at or before it).  key_json keeps the signed response as received, so this node can serve
-- it again as a notary (the origin's signature must stay intact).
CREATE TABLE server_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    verify_key TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    expired_ts BIGINT,
    fetched_ts BIGINT NOT NULL,
    from_server TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
