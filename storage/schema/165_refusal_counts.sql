-- The refusals and passed-over statements the node counted, per counter (the access policy,
-- message tags, what other nodes attest) and per rule, kept across restarts: each node
-- process adds what it counted since its last write (broker/refusal_counts.py).
CREATE TABLE refusal_counts (
    counter TEXT NOT NULL,
    rule TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (counter, rule)
);
