-- The send transaction of a local event (the sending device and its transaction ID), kept on the
-- event's row so that every read of the event (/sync, /messages, /context, GET /event, the live
-- room's recent window after a restart) can give the sending device its
-- unsigned.transaction_id without another query.  NULL for events sent without one, and for
-- every event from another server.  The sender is the event's own sender.
ALTER TABLE events ADD COLUMN txn_device_id TEXT;
ALTER TABLE events ADD COLUMN txn_id TEXT;

-- Events sent before this migration: from event_txn_ids (its key starts with the user, so each
-- lookup reads one sender's rows).
UPDATE events SET
    txn_device_id = (SELECT t.device_id FROM event_txn_ids t
                     WHERE t.user_id = events.sender AND t.event_id = events.event_id),
    txn_id = (SELECT t.txn_id FROM event_txn_ids t
              WHERE t.user_id = events.sender AND t.event_id = events.event_id)
WHERE event_id IN (SELECT event_id FROM event_txn_ids);
