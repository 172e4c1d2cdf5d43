-- The Matrix email validation sessions of a first or forgotten password: the client's secret
-- and send attempt (a retried requestToken sends no second email), and when the code was
-- submitted (``validated_ts``: the session then proves the address until the code expires or
-- is used to set the password).
ALTER TABLE email_codes ADD COLUMN client_secret TEXT;
ALTER TABLE email_codes ADD COLUMN send_attempt INTEGER;
ALTER TABLE email_codes ADD COLUMN validated_ts BIGINT;
CREATE INDEX email_codes_session ON email_codes (address, client_secret);
