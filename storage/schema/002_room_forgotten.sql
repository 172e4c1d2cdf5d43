-- Rooms a user has forgotten (POST /rooms/{roomId}/forget): hidden from that user's sync.
CREATE TABLE room_forgotten (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
