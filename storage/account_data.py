"""Per-user account data, global (``room_id`` '') and per room, including room tags (``m.tag``).

Each row keeps only its latest content and the stream id of its latest write, so "what changed
since token" is an indexed range query on ``(user_id, stream_id)``.  Every write takes a stream id
from the node's one stream (``broker.streams.StreamWriter``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from storage.at_rest import ACCOUNT_DATA_CONTENT
from storage.database import Cursor, Database, IntegrityError
from storage.media_references import replace_account_data_references

GLOBAL = ""  # the room_id of global account data
TAG_TYPE = "m.tag"

JsonDict = dict[str, Any]
RoomAccountData = dict[str, dict[str, JsonDict]]


def select_account_data_txn(
    cur: Cursor, user_id: str, room_id: str, data_type: str, *, for_update: bool = False
) -> JsonDict | None:
    """One entry's content inside a transaction (locked on PostgreSQL when ``for_update``)."""
    lock = " FOR UPDATE" if for_update and cur.engine == "postgres" else ""
    raw = cur.select_value(
        "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND type = ?" + lock,
        (user_id, room_id, data_type))
    return cur.at_rest.open_json(ACCOUNT_DATA_CONTENT, raw) if raw is not None else None


def upsert_account_data_txn(
    cur: Cursor, user_id: str, room_id: str, data_type: str, content: JsonDict, stream_id: int
) -> None:
    """Insert or replace one entry inside a transaction (used by other stores, e.g. push rules)."""
    cur.execute(
        "INSERT INTO account_data (user_id, room_id, type, content, stream_id)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id, room_id, type)"
        " DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id",
        (user_id, room_id, data_type, cur.at_rest.seal_json(ACCOUNT_DATA_CONTENT, content),
         stream_id))
    replace_account_data_references(cur, user_id, room_id, data_type, content)


def _split_rows(cur: Cursor, rows: list[tuple[Any, ...]]
                ) -> tuple[JsonDict, RoomAccountData]:
    global_data: JsonDict = {}
    rooms: RoomAccountData = {}
    for room_id, data_type, content in rows:
        if room_id == GLOBAL:
            global_data[data_type] = cur.at_rest.open_json(ACCOUNT_DATA_CONTENT, content)
        else:
            rooms.setdefault(room_id, {})[data_type] = cur.at_rest.open_json(
                ACCOUNT_DATA_CONTENT, content)
    return global_data, rooms


def global_of_type_txn(cur: Cursor, data_type: str) -> JsonDict:
    """Every user's global account data of ``data_type``: user ID -> content."""
    return {user_id: cur.at_rest.open_json(ACCOUNT_DATA_CONTENT, content)
            for user_id, content in cur.select_all(
        "SELECT user_id, content FROM account_data WHERE room_id = ? AND type = ?",
        (GLOBAL, data_type))}


class AccountDataStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads (the sync engine calls these) ---------------------------------------------------
    def get_global_account_data(self, user_id: str) -> defer.Deferred[JsonDict]:
        """``{type: content}`` of every global entry of ``user_id``."""

        def txn(cur: Cursor) -> JsonDict:
            rows = cur.select_all(
                "SELECT type, content FROM account_data WHERE user_id = ? AND room_id = ?",
                (user_id, GLOBAL))
            return {data_type: cur.at_rest.open_json(ACCOUNT_DATA_CONTENT, content)
                    for data_type, content in rows}

        return self.db.run_interaction("get_global_account_data", txn)

    def global_of_type(self, data_type: str) -> defer.Deferred[JsonDict]:
        """Every user's global account data of ``data_type`` (what the node holds in memory
        of it, read at start): user ID -> content."""
        return self.db.run_interaction("global_account_data_of_type",
                                       lambda cur: global_of_type_txn(cur, data_type))

    def get_room_account_data(self, user_id: str) -> defer.Deferred[RoomAccountData]:
        """``{room_id: {type: content}}`` of every per-room entry of ``user_id``."""

        def txn(cur: Cursor) -> RoomAccountData:
            rows = cur.select_all(
                "SELECT room_id, type, content FROM account_data"
                " WHERE user_id = ? AND room_id <> ?", (user_id, GLOBAL))
            return _split_rows(cur, rows)[1]

        return self.db.run_interaction("get_room_account_data", txn)

    def get_account_data_changes(
        self, user_id: str, since: int, up_to: int
    ) -> defer.Deferred[tuple[JsonDict, RoomAccountData]]:
        """Entries written with ``since < stream_id <= up_to``: (global, per room)."""

        def txn(cur: Cursor) -> tuple[JsonDict, RoomAccountData]:
            rows = cur.select_all(
                "SELECT room_id, type, content FROM account_data"
                " WHERE user_id = ? AND stream_id > ? AND stream_id <= ?",
                (user_id, since, up_to))
            return _split_rows(cur, rows)

        return self.db.run_interaction("get_account_data_changes", txn)

    def get_account_data(
        self, user_id: str, room_id: str, data_type: str
    ) -> defer.Deferred[JsonDict | None]:
        """One entry's content (``room_id`` '' for global), or None when unset."""
        return self.db.run_interaction(
            "get_account_data", select_account_data_txn, user_id, room_id, data_type)

    def get_room_tags(self, user_id: str, room_id: str) -> defer.Deferred[JsonDict]:
        """``{tag: {order?...}}`` of one room (empty when the room has no tags)."""

        def txn(cur: Cursor) -> JsonDict:
            content = select_account_data_txn(cur, user_id, room_id, TAG_TYPE)
            tags = (content or {}).get("tags")
            return tags if isinstance(tags, dict) else {}

        return self.db.run_interaction("get_room_tags", txn)

    # -- writes (each under a stream id from node.write_with_stream_id) ------------------------
    def set_account_data(
        self, user_id: str, room_id: str, data_type: str, content: JsonDict, stream_id: int
    ) -> defer.Deferred[None]:
        """Set one entry (``room_id`` '' for global)."""
        return self.db.run_interaction(
            "set_account_data", upsert_account_data_txn, user_id, room_id, data_type, content,
            stream_id)

    def set_room_tag(
        self, user_id: str, room_id: str, tag: str, tag_content: JsonDict, stream_id: int
    ) -> defer.Deferred[bool]:
        """Add or replace one tag on a room (read-modify-write of its ``m.tag`` entry)."""

        def change(tags: JsonDict) -> bool:
            tags[tag] = tag_content
            return True

        return defer.ensureDeferred(
            self._modify_tags("set_room_tag", user_id, room_id, change, stream_id))

    def remove_room_tag(
        self, user_id: str, room_id: str, tag: str, stream_id: int
    ) -> defer.Deferred[bool]:
        """Remove one tag from a room; False (and nothing written) if it was not set."""

        def change(tags: JsonDict) -> bool:
            if tag not in tags:
                return False
            del tags[tag]
            return True

        return defer.ensureDeferred(
            self._modify_tags("remove_room_tag", user_id, room_id, change, stream_id))

    async def _modify_tags(
        self, desc: str, user_id: str, room_id: str, change: Callable[[JsonDict], bool],
        stream_id: int,
    ) -> bool:
        def txn(cur: Cursor) -> bool:
            content = select_account_data_txn(cur, user_id, room_id, TAG_TYPE, for_update=True)
            existed = content is not None
            content = dict(content or {})
            tags = content.get("tags")
            tags = dict(tags) if isinstance(tags, dict) else {}
            if not change(tags):
                return False
            content["tags"] = tags
            if existed:
                cur.execute(
                    "UPDATE account_data SET content = ?, stream_id = ?"
                    " WHERE user_id = ? AND room_id = ? AND type = ?",
                    (cur.at_rest.seal_json(ACCOUNT_DATA_CONTENT, content), stream_id, user_id,
                     room_id, TAG_TYPE))
            else:  # a concurrent first tag makes this INSERT fail: retried below
                cur.execute(
                    "INSERT INTO account_data (user_id, room_id, type, content, stream_id)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user_id, room_id, TAG_TYPE,
                     cur.at_rest.seal_json(ACCOUNT_DATA_CONTENT, content), stream_id))
            return True

        try:
            return await self.db.run_interaction(desc, txn)
        except IntegrityError:
            return await self.db.run_interaction(desc, txn)
