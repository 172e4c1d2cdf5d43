-- End-to-end encryption keys of devices and the device-list change stream.
--
-- The node only stores public keys: identity keys of local devices (as uploaded, signed by the
-- device), their one-time and fallback keys, and a cache of the identity keys of remote users'
-- devices.  Nothing here lets the node decrypt anything.

-- Identity keys of a local device (the DeviceKeys object the device signed), one row per device.
CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Unclaimed one-time keys; claiming deletes the row.  key_id is the part after the algorithm.
CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);

-- At most one fallback key per device and algorithm; it is handed out (and marked used) once no
-- one-time key is left, until the device replaces it.
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- One row per change of a user's device list (local or remote user), at a position of the
-- node's stream: /sync and /keys/changes read "whose devices changed since a token" from here.
-- device_id is '' when the change is not about one device.
CREATE TABLE device_list_changes (
    user_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (user_id, stream_id)
);
CREATE INDEX device_list_changes_stream ON device_list_changes (stream_id);

-- Remote users whose device lists we track: the last stream_id of their server's
-- m.device_list_update EDUs we saw, and whether the cached device keys below are complete and
-- current (cached_ts is NULL when they are not and the next /keys/query must ask the server).
-- cross_signing_json keeps the master/self-signing keys the server answered with.
CREATE TABLE e2e_remote_device_lists (
    user_id TEXT PRIMARY KEY,
    remote_stream_id BIGINT,
    cached_ts BIGINT,
    cross_signing_json TEXT
);

CREATE TABLE e2e_remote_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
