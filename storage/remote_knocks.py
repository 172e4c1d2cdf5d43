"""Knocks of local users on rooms held by other servers, until the user is let in, joins or
withdraws the knock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.at_rest import REMOTE_KNOCKS_EVENT, REMOTE_KNOCKS_STATE
from storage.database import Cursor, Database


@dataclass(frozen=True)
class RemoteKnock:
    user_id: str
    room_id: str
    event_id: str
    room_version: str
    server: str  # the resident server the knock went through
    event: dict[str, Any]
    knock_state: list[dict[str, Any]]  # stripped state events
    stream_id: int


_COLUMNS = ("user_id, room_id, event_id, room_version, server, event_json, knock_state,"
            " stream_id")


def _row(cur: Cursor, row: Any) -> RemoteKnock:
    return RemoteKnock(row[0], row[1], row[2], row[3], row[4],
                       cur.at_rest.open_json(REMOTE_KNOCKS_EVENT, row[5]),
                       cur.at_rest.open_json(REMOTE_KNOCKS_STATE, row[6]), int(row[7]))


class RemoteKnockStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_knock(self, knock: RemoteKnock) -> defer.Deferred[None]:
        def txn(cur: Cursor) -> None:
            cur.execute("DELETE FROM remote_knocks WHERE user_id = ? AND room_id = ?",
                        (knock.user_id, knock.room_id))
            cur.execute(
                f"INSERT INTO remote_knocks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (knock.user_id, knock.room_id, knock.event_id, knock.room_version, knock.server,
                 cur.at_rest.seal_json(REMOTE_KNOCKS_EVENT, knock.event),
                 cur.at_rest.seal_json(REMOTE_KNOCKS_STATE, knock.knock_state),
                 knock.stream_id))

        return self.db.run_interaction("add_remote_knock", txn)

    def get_knocks(self, user_id: str) -> defer.Deferred[list[RemoteKnock]]:
        return self.db.run_interaction(
            "remote_knocks",
            lambda cur: [_row(cur, r) for r in cur.select_all(
                f"SELECT {_COLUMNS} FROM remote_knocks WHERE user_id = ? ORDER BY stream_id",
                (user_id,))])

    def get_knock(self, user_id: str, room_id: str) -> defer.Deferred[RemoteKnock | None]:
        def txn(cur: Cursor) -> RemoteKnock | None:
            row = cur.select_one(
                f"SELECT {_COLUMNS} FROM remote_knocks WHERE user_id = ? AND room_id = ?",
                (user_id, room_id))
            return _row(cur, row) if row else None

        return self.db.run_interaction("remote_knock", txn)

    def delete_knock(self, user_id: str, room_id: str) -> defer.Deferred[None]:
        def txn(cur: Cursor) -> None:
            cur.execute("DELETE FROM remote_knocks WHERE user_id = ? AND room_id = ?",
                        (user_id, room_id))

        return self.db.run_interaction("delete_remote_knock", txn)
