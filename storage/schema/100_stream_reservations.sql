-- The high-water mark of each counter a sync token carries ('stream': the one stream position,
-- 'typing': the typing serial).  A node reserves numbers in blocks and writes the end of the
-- block here before handing any of them out, so after any restart (a crash included) it resumes
-- above every number a client may hold, even one that left no row behind (a no-op tag delete,
-- a delivered and deleted to-device message, a typing notification).
CREATE TABLE stream_reservations (
    name TEXT PRIMARY KEY,
    reserved BIGINT NOT NULL
);
INSERT INTO stream_reservations (name, reserved) VALUES ('stream', 0);
INSERT INTO stream_reservations (name, reserved) VALUES ('typing', 0)
