"""Invites of local users into rooms held by other servers, until the user joins or declines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.at_rest import REMOTE_INVITES_EVENT, REMOTE_INVITES_STATE
from storage.database import Cursor, Database


@dataclass(frozen=True)
class RemoteInvite:
    user_id: str
    room_id: str
    event_id: str
    room_version: str
    event: dict[str, Any]
    invite_state: list[dict[str, Any]]
    stream_id: int


_COLUMNS = "user_id, room_id, event_id, room_version, event_json, invite_state, stream_id"


def _row(cur: Cursor, row: Any) -> RemoteInvite:
    return RemoteInvite(row[0], row[1], row[2], row[3],
                        cur.at_rest.open_json(REMOTE_INVITES_EVENT, row[4]),
                        cur.at_rest.open_json(REMOTE_INVITES_STATE, row[5]),
                        int(row[6]))


class RemoteInviteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_invite(self, invite: RemoteInvite) -> defer.Deferred[None]:
        def txn(cur: Cursor) -> None:
            cur.execute("DELETE FROM remote_invites WHERE user_id = ? AND room_id = ?",
                        (invite.user_id, invite.room_id))
            cur.execute(
                f"INSERT INTO remote_invites ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (invite.user_id, invite.room_id, invite.event_id, invite.room_version,
                 cur.at_rest.seal_json(REMOTE_INVITES_EVENT, invite.event),
                 cur.at_rest.seal_json(REMOTE_INVITES_STATE, invite.invite_state),
                 invite.stream_id))

        return self.db.run_interaction("add_remote_invite", txn)

    def get_invites(self, user_id: str) -> defer.Deferred[list[RemoteInvite]]:
        return self.db.run_interaction(
            "remote_invites",
            lambda cur: [_row(cur, r) for r in cur.select_all(
                f"SELECT {_COLUMNS} FROM remote_invites WHERE user_id = ? ORDER BY stream_id",
                (user_id,))])

    def get_invite(self, user_id: str, room_id: str) -> defer.Deferred[RemoteInvite | None]:
        def txn(cur: Cursor) -> RemoteInvite | None:
            row = cur.select_one(
                f"SELECT {_COLUMNS} FROM remote_invites WHERE user_id = ? AND room_id = ?",
                (user_id, room_id))
            return _row(cur, row) if row else None

        return self.db.run_interaction("remote_invite", txn)

    def delete_invite(self, user_id: str, room_id: str) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "delete_remote_invite",
            lambda cur: cur.execute(
                "DELETE FROM remote_invites WHERE user_id = ? AND room_id = ?",
                (user_id, room_id)) and None)
