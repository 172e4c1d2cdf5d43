-- Which timeline event relates to which (m.relates_to of its content: m.thread, m.replace,
-- m.annotation, m.reference...), written in the event's own transaction (storage/relations.py)
-- and dropped when the relating event is redacted.  ``aggregation_key`` is an annotation's key.
CREATE TABLE event_relations (
    event_id TEXT PRIMARY KEY,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    sender TEXT NOT NULL,
    aggregation_key TEXT,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_relations_target ON event_relations (relates_to_id, stream_ordering);
CREATE INDEX event_relations_threads ON event_relations (room_id, rel_type, stream_ordering);
-- The events stored before the index was kept are indexed by a resumable background fill,
-- newest first: those below ``below`` (a stream position) are still to be read.  The row goes
-- once the fill is done.
CREATE TABLE event_relations_fill (
    below BIGINT NOT NULL
);
INSERT INTO event_relations_fill (below) SELECT COALESCE(MAX(stream_ordering), 0) + 1 FROM events;
