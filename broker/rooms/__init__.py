"""Rooms: in-memory live room state, event creation through the auth rules, group commit."""
