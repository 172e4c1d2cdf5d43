-- The metadata-only usage statistics (broker/statistics.py): aggregates per UTC day and
-- organisation ('' for none: users in no organisation, and what belongs to the node as a whole
-- such as federation traffic and retention purges), one count per metric and item (the
-- federation peer, the policy rule, the room kind; '' for a metric without items).  No row
-- names a message, a room or a user.
CREATE TABLE statistics_daily (
    day TEXT NOT NULL,
    organisation TEXT NOT NULL,
    metric TEXT NOT NULL,
    item TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (day, organisation, metric, item)
);
