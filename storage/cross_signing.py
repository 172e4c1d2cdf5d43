"""Cross-signing keys and the signatures made with them (Client-Server "Cross-signing").

Each user has at most one current key per usage (``master``, ``self_signing``, ``user_signing``),
stored as the JSON object it was uploaded or received as.  Signatures uploaded later through
``/keys/signatures/upload`` live in their own table and are merged into what ``/keys/query``
answers.  Every write carries a stream id, so device-list changes can be read by range.

Signature visibility: a signature a user makes over their own keys (a device over the master key,
the self-signing key over a device) is public; a signature over another user's master key (made
with the user-signing key) is only shown to its signer.  :meth:`get_signatures_for` applies that
rule through its ``viewer`` argument.

Device-list changes: writes that change what other users see of a user's keys also add a row to
``device_list_changes`` (:mod:`storage.device_keys`) in the same transaction, at their own stream
position: ``device_id`` '' for a cross-signing key change or a new signature over the master key,
the device's ID for a new signature over a device.  /sync and /keys/changes read those rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database

MASTER = "master"
SELF_SIGNING = "self_signing"
USER_SIGNING = "user_signing"
USAGES = (MASTER, SELF_SIGNING, USER_SIGNING)

JsonDict = dict[str, Any]
# target key id -> signer user id -> signer key id -> signature
SignatureMap = dict[str, dict[str, dict[str, str]]]

_BATCH = 500


class _Unchecked:
    """Marker: write without comparing the current master key."""


UNCHECKED = _Unchecked()


@dataclass(frozen=True)
class ListChange:
    """A row written to ``device_list_changes`` and the user's change before it."""

    user_id: str
    device_id: str  # '' when the change is not about one device
    stream_id: int
    prev_stream_id: int | None


@dataclass(frozen=True)
class Signature:
    signer_user_id: str
    signer_key_id: str  # "ed25519:<public key>" or "ed25519:<device id>"
    target_user_id: str
    target_key_id: str  # a device ID or a master key's unpadded base64 public key
    signature: str


def key_id_of(key: JsonDict) -> str:
    """The one ``ed25519:`` key id of a cross-signing key object (its first key id)."""
    return str(next(iter(key["keys"])))


def public_key_of(key: JsonDict) -> str:
    """The unpadded base64 public key of a cross-signing key object."""
    return key_id_of(key).split(":", 1)[1]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class CrossSigningStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- keys --------------------------------------------------------------------------------
    def get_cross_signing_keys(
        self, user_ids: Iterable[str], usages: Iterable[str] = USAGES,
    ) -> defer.Deferred[dict[str, dict[str, JsonDict]]]:
        """user_id -> usage -> key object (as stored, without later-uploaded signatures).

        Users without cross-signing keys are absent.
        """
        users = sorted(set(user_ids))
        wanted = list(usages)

        def txn(cur: Cursor) -> dict[str, dict[str, JsonDict]]:
            out: dict[str, dict[str, JsonDict]] = {}
            usage_clause, usage_args = cur.in_clause("key_usage", wanted)
            for start in range(0, len(users), _BATCH):
                clause, args = cur.in_clause("user_id", users[start:start + _BATCH])
                for user_id, usage, key_json in cur.select_all(
                        "SELECT user_id, key_usage, key_json FROM cross_signing_keys"
                        f" WHERE {clause} AND {usage_clause}", (*args, *usage_args)):
                    out.setdefault(user_id, {})[usage] = json.loads(key_json)
            return out

        return self.db.run_interaction("get_cross_signing_keys", txn)

    def set_cross_signing_keys(
        self, user_id: str, keys: Mapping[str, JsonDict], stream_id: int, *,
        expected_master: str | None | _Unchecked = UNCHECKED,
    ) -> defer.Deferred[ListChange | None]:
        """Make ``keys`` (usage -> key object) the user's current keys of those usages and
        record the device-list change (device_id '') at ``stream_id``.

        With ``expected_master`` (a master key id, or None for "no master key yet") nothing is
        written and None returned unless the stored master key is still that one, so two
        concurrent first uploads cannot both skip authentication.  Signatures made by a replaced
        key, and signatures over a replaced master key, are deleted with it.
        """
        for usage in keys:
            if usage not in USAGES:
                raise ValueError(f"unknown cross-signing key usage {usage!r}")

        def txn(cur: Cursor) -> ListChange | None:
            current = {usage: key_id for usage, key_id in cur.select_all(
                "SELECT key_usage, key_id FROM cross_signing_keys WHERE user_id = ?",
                (user_id,))}
            if not isinstance(expected_master, _Unchecked) \
                    and current.get(MASTER) != expected_master:
                return None
            for usage, key in keys.items():
                key_id = key_id_of(key)
                old = current.get(usage)
                if old is not None and old != key_id:
                    cur.execute(
                        "DELETE FROM cross_signing_signatures"
                        " WHERE signer_user_id = ? AND signer_key_id = ?", (user_id, old))
                    if usage == MASTER:
                        cur.execute(
                            "DELETE FROM cross_signing_signatures"
                            " WHERE target_user_id = ? AND target_key_id = ?",
                            (user_id, old.split(":", 1)[1]))
                cur.execute(
                    "INSERT INTO cross_signing_keys"
                    " (user_id, key_usage, key_id, key_json, stream_id) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id, key_usage) DO UPDATE SET key_id = excluded.key_id,"
                    " key_json = excluded.key_json, stream_id = excluded.stream_id",
                    (user_id, usage, key_id, _dumps(key), stream_id))
            return _record_list_change(cur, user_id, "", stream_id)

        return self.db.run_interaction("set_cross_signing_keys", txn)

    # -- signatures --------------------------------------------------------------------------
    def add_signatures(
        self, signatures: Iterable[Signature], stream_id: int, *,
        list_changes: Sequence[tuple[str, str, int]] = (),
    ) -> defer.Deferred[list[ListChange]]:
        """Store signatures (a signature by the same signer key over the same target replaces
        the previous one) and record ``list_changes`` (user_id, device_id, stream_id) in
        ``device_list_changes``, in one transaction."""
        rows = [(s.target_user_id, s.target_key_id, s.signer_user_id, s.signer_key_id,
                 s.signature, stream_id) for s in signatures]

        def txn(cur: Cursor) -> list[ListChange]:
            cur.executemany(
                "INSERT INTO cross_signing_signatures (target_user_id, target_key_id,"
                " signer_user_id, signer_key_id, signature, stream_id)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)"
                " DO UPDATE SET signature = excluded.signature, stream_id = excluded.stream_id",
                rows)
            return [_record_list_change(cur, user_id, device_id, change_id)
                    for user_id, device_id, change_id in list_changes]

        return self.db.run_interaction("add_cross_signing_signatures", txn)

    def get_signatures(self, target_user_id: str, key_ids: Iterable[str], *,
                       viewer: str | None = None) -> defer.Deferred[SignatureMap]:
        """Stored signatures over ``key_ids`` (device IDs or master public keys) of one user,
        as ``{key_id: {signer_user_id: {signer_key_id: signature}}}``: the user's own
        signatures, plus ``viewer``'s when given.  Keys without signatures are absent."""
        d = self.get_signatures_for({target_user_id: list(key_ids)}, viewer=viewer)
        return d.addCallback(lambda found: found.get(target_user_id, {}))

    def get_signatures_for(self, targets: Mapping[str, Iterable[str]], *,
                           viewer: str | None = None
                           ) -> defer.Deferred[dict[str, SignatureMap]]:
        """Like :meth:`get_signatures` for several users at once: user_id -> SignatureMap."""
        pairs = sorted({(user_id, key_id) for user_id, key_ids in targets.items()
                        for key_id in key_ids})

        def txn(cur: Cursor) -> dict[str, SignatureMap]:
            out: dict[str, SignatureMap] = {}
            by_user: dict[str, list[str]] = {}
            for user_id, key_id in pairs:
                by_user.setdefault(user_id, []).append(key_id)
            for user_id, key_ids in by_user.items():
                for start in range(0, len(key_ids), _BATCH):
                    clause, args = cur.in_clause("target_key_id", key_ids[start:start + _BATCH])
                    rows = cur.select_all(
                        "SELECT target_key_id, signer_user_id, signer_key_id, signature"
                        " FROM cross_signing_signatures WHERE target_user_id = ?"
                        f" AND {clause} AND (signer_user_id = ? OR signer_user_id = ?)",
                        (user_id, *args, user_id, viewer if viewer is not None else user_id))
                    for key_id, signer, signer_key_id, signature in rows:
                        out.setdefault(user_id, {}).setdefault(key_id, {}).setdefault(
                            signer, {})[signer_key_id] = signature
            return out

        return self.db.run_interaction("get_cross_signing_signatures", txn)

    # -- changes -----------------------------------------------------------------------------
    def get_changed_users(self, since: int, up_to: int) -> defer.Deferred[list[str]]:
        """Users whose cross-signing keys changed, or whose keys gained signatures visible to
        everyone, with since < stream_id <= up_to (for device-list ``changed``)."""

        def txn(cur: Cursor) -> list[str]:
            rows = cur.select_all(
                "SELECT user_id FROM cross_signing_keys WHERE stream_id > ? AND stream_id <= ?"
                " UNION SELECT target_user_id FROM cross_signing_signatures"
                " WHERE stream_id > ? AND stream_id <= ? AND signer_user_id = target_user_id",
                (since, up_to, since, up_to))
            return sorted(row[0] for row in rows)

        return self.db.run_interaction("cross_signing_changed_users", txn)

    def get_users_signed_by(self, signer_user_id: str, since: int, up_to: int
                            ) -> defer.Deferred[list[str]]:
        """Other users whose master key ``signer_user_id`` signed with since < stream_id <=
        up_to: only the signer sees those signatures, so only the signer's device lists
        change."""
        return self.db.run_interaction(
            "cross_signing_users_signed_by",
            lambda cur: sorted({row[0] for row in cur.select_all(
                "SELECT target_user_id FROM cross_signing_signatures WHERE signer_user_id = ?"
                " AND target_user_id <> ? AND stream_id > ? AND stream_id <= ?",
                (signer_user_id, signer_user_id, since, up_to))}))


def _record_list_change(cur: Cursor, user_id: str, device_id: str, stream_id: int) -> ListChange:
    prev = cur.select_value(
        "SELECT MAX(stream_id) FROM device_list_changes WHERE user_id = ?", (user_id,))
    cur.execute("INSERT INTO device_list_changes (user_id, stream_id, device_id) VALUES (?, ?, ?)",
                (user_id, stream_id, device_id))
    return ListChange(user_id, device_id, stream_id, int(prev) if prev is not None else None)
