-- Account validity renewal emails (account_validity.renew_before): the hash of the link's
-- token sent to the account's official email, and when; both cleared by a renewal.
ALTER TABLE users ADD COLUMN renewal_token_hash TEXT;
ALTER TABLE users ADD COLUMN renewal_sent_ts BIGINT;
CREATE UNIQUE INDEX users_renewal_token ON users (renewal_token_hash);
