-- What an accepted application message will put in its recipient's room, kept from the write
-- of its "queued" status (the same transaction) until the tracker records it sent or failed:
-- a node stopped in between sends it at its next start (broker/apps/sending.py,
-- AppMessages.resume).  ``contents`` is sealed at rest (JSON: the events' contents and the
-- message's lifetime).
CREATE TABLE app_outbox (
    message_id TEXT PRIMARY KEY,
    contents TEXT NOT NULL
);
