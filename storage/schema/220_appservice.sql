-- Application services (broker/appservice/): how far each service has been pushed the event
-- stream and the last transaction id it was sent, written after each transaction it accepted.
-- The events themselves are its persisted queue: after a restart (or a long outage) the
-- pusher reads the events after ``stream_position`` again.
CREATE TABLE appservice_positions (
    service_id TEXT PRIMARY KEY,
    stream_position BIGINT NOT NULL,
    last_txn_id BIGINT NOT NULL,
    last_success_ts BIGINT
);
