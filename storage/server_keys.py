"""Signing keys of other servers, as fetched (directly or through a notary).

One row per ``(server_name, key_id)``. Storing a response replaces a key's row only if the new
response is valid at least as long as the stored one, so an older copy (say, a notary's stale
cache) never overwrites a fresher answer. Each row keeps the signed response it came from
(``key_json``) so the node can serve it again, untouched, as a notary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database

_COLUMNS = (
    "server_name, key_id, verify_key, valid_until_ts, expired_ts, fetched_ts, from_server, key_json"
)


@dataclass(frozen=True)
class StoredServerKey:
    """One stored key. ``expired_ts`` is ``None`` for a current key, set for an old one."""

    server_name: str
    key_id: str
    verify_key: str  # unpadded base64 of the ed25519 public key
    valid_until_ts: int
    expired_ts: int | None
    fetched_ts: int
    from_server: str  # the server itself, or the notary that vouched for it
    key_json: dict[str, Any]


def _row(row: tuple[Any, ...]) -> StoredServerKey:
    server, key_id, key, valid_until, expired, fetched, from_server, key_json = row
    return StoredServerKey(
        server_name=server,
        key_id=key_id,
        verify_key=key,
        valid_until_ts=int(valid_until),
        expired_ts=None if expired is None else int(expired),
        fetched_ts=int(fetched),
        from_server=from_server,
        key_json=json.loads(key_json),
    )


class ServerKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def store_server_keys(
        self,
        server_name: str,
        *,
        verify_keys: Mapping[str, str],
        old_verify_keys: Mapping[str, tuple[str, int]],
        valid_until_ts: int,
        fetched_ts: int,
        from_server: str,
        key_json: Mapping[str, Any],
    ) -> defer.Deferred[None]:
        """Record one verified response for ``server_name`` in one transaction.

        ``verify_keys`` maps key ID to base64 key; ``old_verify_keys`` maps key ID to
        ``(base64 key, expired_ts)``. A key whose stored row comes from a response valid
        longer than this one is left alone.
        """
        text = json.dumps(key_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        rows: list[tuple[Any, ...]] = [
            (server_name, key_id, key, valid_until_ts, None, fetched_ts, from_server, text)
            for key_id, key in verify_keys.items()
        ]
        rows += [
            (server_name, key_id, key, valid_until_ts, expired, fetched_ts, from_server, text)
            for key_id, (key, expired) in old_verify_keys.items()
            if key_id not in verify_keys
        ]

        def write(cur: Cursor) -> None:
            cur.executemany(
                f"INSERT INTO server_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (server_name, key_id) DO UPDATE SET"
                " verify_key = excluded.verify_key, valid_until_ts = excluded.valid_until_ts,"
                " expired_ts = excluded.expired_ts, fetched_ts = excluded.fetched_ts,"
                " from_server = excluded.from_server, key_json = excluded.key_json"
                " WHERE server_keys.valid_until_ts <= excluded.valid_until_ts",
                rows,
            )

        return self.db.run_interaction("store_server_keys", write)

    def get_server_keys(self, server_name: str) -> defer.Deferred[list[StoredServerKey]]:
        """Every stored key of ``server_name`` (current and old), by key ID."""

        def read(cur: Cursor) -> list[StoredServerKey]:
            rows = cur.select_all(
                f"SELECT {_COLUMNS} FROM server_keys WHERE server_name = ? ORDER BY key_id",
                (server_name,),
            )
            return [_row(r) for r in rows]

        return self.db.run_interaction("get_server_keys", read)

    def get_server_key(
        self, server_name: str, key_id: str
    ) -> defer.Deferred[StoredServerKey | None]:
        """One stored key, or ``None``."""

        def read(cur: Cursor) -> StoredServerKey | None:
            row = cur.select_one(
                f"SELECT {_COLUMNS} FROM server_keys WHERE server_name = ? AND key_id = ?",
                (server_name, key_id),
            )
            return None if row is None else _row(row)

        return self.db.run_interaction("get_server_key", read)

    def delete_server_keys(self, server_name: str) -> defer.Deferred[int]:
        """Forget every stored key of ``server_name`` (e.g. after a key compromise)."""

        def delete(cur: Cursor) -> int:
            return cur.execute(
                "DELETE FROM server_keys WHERE server_name = ?", (server_name,)
            ).rowcount

        return self.db.run_interaction("delete_server_keys", delete)
