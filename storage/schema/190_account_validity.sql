-- Account validity (account_validity.enabled): when each account expires; NULL is not yet
-- given one (the validity job gives it the period from its first run, as it does to accounts
-- made before validity was enabled).
ALTER TABLE users ADD COLUMN expires_ts BIGINT;
-- When an account was deactivated (NULL: before this migration, or by a path that does not
-- stamp it; the deactivated-data job stamps it with its own time at its first run), and when
-- its personal data was deleted (retention.deactivated_account_data).
ALTER TABLE users ADD COLUMN deactivated_ts BIGINT;
ALTER TABLE users ADD COLUMN personal_data_deleted_ts BIGINT;
CREATE INDEX users_no_expiry ON users (user_id) WHERE expires_ts IS NULL;
