-- Cross-signing keys: each user's current master, self-signing and user-signing key (local users'
-- as uploaded, remote users' as learned over federation).  key_json is the key object with the
-- signatures it was uploaded with; key_id is 'ed25519:<unpadded base64 public key>'.
-- stream_id is the position of the last change, so device-list changes can be read by range.
CREATE TABLE cross_signing_keys (
    user_id TEXT NOT NULL,
    key_usage TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_usage)
);
CREATE INDEX cross_signing_keys_stream ON cross_signing_keys (stream_id);

-- Signatures uploaded through /keys/signatures/upload, kept apart from the signed object:
-- a self-signing key over a device (target_key_id = device ID), a device over its user's master
-- key and a user-signing key over another user's master key (target_key_id = the master key's
-- unpadded base64 public key).
CREATE TABLE cross_signing_signatures (
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);
CREATE INDEX cross_signing_signatures_stream ON cross_signing_signatures (stream_id);
