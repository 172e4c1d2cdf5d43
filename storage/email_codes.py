"""One-time codes sent by email, and the verification requests a correct code may queue for
a verifier (migration 120).  Every change is written with the audit entry that records it,
in one transaction; a code is marked used in the transaction of what it allowed, so one code
never allows two things."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.internet import defer

from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database
from storage.users import change_password_in

_CODE_COLUMNS = ("sid, purpose, user_id, address, org_id, code_hash, created_ts, expires_ts,"
                 " attempts, used_ts, client_secret, send_attempt, validated_ts")
_REQUEST_COLUMNS = ("request_id, user_id, org_id, address, state, created_ts, decided_by,"
                    " decided_ts, reason")
PENDING, APPROVED, DENIED = "pending", "approved", "denied"
CursorWrite = Callable[[Cursor], None]


class CodeUsed(Exception):
    """The code was used meanwhile (by a concurrent request): nothing was written."""


class RequestDecided(Exception):
    """The request was decided meanwhile: nothing was written."""


@dataclass(frozen=True)
class CodeRow:
    sid: str
    purpose: str
    user_id: str
    address: str
    org_id: str | None
    code_hash: str
    created_ts: int
    expires_ts: int
    attempts: int = 0
    used_ts: int | None = None
    client_secret: str | None = None  # a Matrix validation session's (a password code)
    send_attempt: int | None = None
    validated_ts: int | None = None


@dataclass(frozen=True)
class RequestRow:
    request_id: str
    user_id: str
    org_id: str
    address: str
    state: str
    created_ts: int
    decided_by: str | None = None
    decided_ts: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RequestQuery:
    """Which requests a listing wants: in ``organisations`` (None: any), in ``state`` (None:
    any), after request ID ``after``, at most ``limit``."""

    organisations: Sequence[str] | None
    state: str | None = None
    after: str = ""
    limit: int = 100


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _code(r: Sequence[object]) -> CodeRow:
    return CodeRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), None if r[4] is None else str(r[4]),
                   str(r[5]), int(str(r[6])), int(str(r[7])), int(str(r[8])), _int(r[9]),
                   None if r[10] is None else str(r[10]), _int(r[11]), _int(r[12]))


def _request(r: Sequence[object]) -> RequestRow:
    return RequestRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(str(r[5])),
                      None if r[6] is None else str(r[6]),
                      None if r[7] is None else int(str(r[7])),
                      None if r[8] is None else str(r[8]))


def use_code(sid: str, now_ms: int) -> CursorWrite:
    """A write marking the code used; :class:`CodeUsed` (rolling back) if it was already."""
    def write(cur: Cursor) -> None:
        cur.execute("UPDATE email_codes SET used_ts = ? WHERE sid = ? AND used_ts IS NULL",
                    (now_ms, sid))
        if cur.rowcount != 1:
            raise CodeUsed(sid)

    return write


def decide_request(request_id: str, state: str, by: str, now_ms: int, reason: str | None
                   ) -> CursorWrite:
    """A write deciding a pending request; :class:`RequestDecided` (rolling back) if it was
    decided already."""
    def write(cur: Cursor) -> None:
        cur.execute("UPDATE verification_requests SET state = ?, decided_by = ?,"
                    " decided_ts = ?, reason = ? WHERE request_id = ? AND state = ?",
                    (state, by, now_ms, reason, request_id, PENDING))
        if cur.rowcount != 1:
            raise RequestDecided(request_id)

    return write


class EmailCodeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, row: CodeRow, entry: AuditDraft) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute(f"INSERT INTO email_codes ({_CODE_COLUMNS})"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (row.sid, row.purpose, row.user_id, row.address, row.org_id,
                         row.code_hash, row.created_ts, row.expires_ts, row.attempts,
                         row.used_ts, row.client_secret, row.send_attempt, row.validated_ts))

        return self.db.run_interaction("email_code_add", write)

    def get(self, sid: str) -> defer.Deferred[CodeRow | None]:
        def read(cur: Cursor) -> CodeRow | None:
            found = cur.select_one(f"SELECT {_CODE_COLUMNS} FROM email_codes WHERE sid = ?",
                                   (sid,))
            return None if found is None else _code(found)

        return self.db.run_interaction("email_code_get", read)

    def session(self, purpose: str, address: str, client_secret: str
                ) -> defer.Deferred[CodeRow | None]:
        """The newest code sent to ``address`` for the client's ``client_secret``."""
        def read(cur: Cursor) -> CodeRow | None:
            found = cur.select_one(
                f"SELECT {_CODE_COLUMNS} FROM email_codes WHERE purpose = ? AND address = ?"
                " AND client_secret = ? ORDER BY created_ts DESC, sid LIMIT 1",
                (purpose, address, client_secret))
            return None if found is None else _code(found)

        return self.db.run_interaction("email_code_session", read)

    def validate(self, sid: str, now_ms: int, entry: AuditDraft) -> defer.Deferred[None]:
        """The code was submitted: its session proves the address from now on."""
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute("UPDATE email_codes SET validated_ts = ? WHERE sid = ?", (now_ms, sid))

        return self.db.run_interaction("email_code_validate", write)

    def count_attempt(self, sid: str) -> defer.Deferred[int]:
        """One more wrong try of the code; how many it has had."""
        def write(cur: Cursor) -> int:
            cur.execute("UPDATE email_codes SET attempts = attempts + 1 WHERE sid = ?", (sid,))
            found = cur.select_one("SELECT attempts FROM email_codes WHERE sid = ?", (sid,))
            return 0 if found is None else int(found[0])

        return self.db.run_interaction("email_code_attempt", write)

    def queue_request(self, sid: str, request: RequestRow, entry: AuditDraft
                      ) -> defer.Deferred[None]:
        """Use the code and queue ``request`` for a verifier."""
        def write(cur: Cursor) -> None:
            use_code(sid, request.created_ts)(cur)
            append_entry(cur, entry)
            cur.execute(f"INSERT INTO verification_requests ({_REQUEST_COLUMNS})"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (request.request_id, request.user_id, request.org_id, request.address,
                         request.state, request.created_ts, request.decided_by,
                         request.decided_ts, request.reason))

        return self.db.run_interaction("verification_request_add", write)

    def use(self, sid: str, now_ms: int, entry: AuditDraft,
            also: CursorWrite | None = None) -> defer.Deferred[None]:
        """Use the code for what ``also`` writes (in the same transaction)."""
        def write(cur: Cursor) -> None:
            use_code(sid, now_ms)(cur)
            append_entry(cur, entry)
            if also is not None:
                also(cur)

        return self.db.run_interaction("email_code_use", write)

    def set_password(self, sid: str, user_id: str, password_hash: str,
                     keep_device_id: str | None, logout_other_devices: bool, now_ms: int,
                     entry: AuditDraft) -> defer.Deferred[list[str]]:
        """Use the code to set the user's password (as
        :func:`storage.users.change_password_in`); the revoked token hashes."""
        def write(cur: Cursor) -> list[str]:
            use_code(sid, now_ms)(cur)
            append_entry(cur, entry)
            return change_password_in(cur, user_id, password_hash, keep_device_id,
                                      logout_other_devices)

        return self.db.run_interaction("email_code_password", write)

    def decide(self, request_id: str, state: str, by: str, now_ms: int, reason: str | None,
               entry: AuditDraft) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            decide_request(request_id, state, by, now_ms, reason)(cur)
            append_entry(cur, entry)

        return self.db.run_interaction("verification_request_decide", write)

    def request(self, request_id: str) -> defer.Deferred[RequestRow | None]:
        def read(cur: Cursor) -> RequestRow | None:
            found = cur.select_one(f"SELECT {_REQUEST_COLUMNS} FROM verification_requests"
                                   " WHERE request_id = ?", (request_id,))
            return None if found is None else _request(found)

        return self.db.run_interaction("verification_request_get", read)

    def requests(self, query: RequestQuery) -> defer.Deferred[list[RequestRow]]:
        """Requests matching ``query``, in request ID (creation) order."""
        def read(cur: Cursor) -> list[RequestRow]:
            where, args = ["request_id > ?"], [query.after]
            if query.organisations is not None:
                if not query.organisations:
                    return []
                where.append(f"org_id IN ({', '.join('?' for _ in query.organisations)})")
                args.extend(query.organisations)
            if query.state is not None:
                where.append("state = ?")
                args.append(query.state)
            return [_request(r) for r in cur.select_all(
                f"SELECT {_REQUEST_COLUMNS} FROM verification_requests"
                f" WHERE {' AND '.join(where)} ORDER BY request_id LIMIT ?",
                (*args, query.limit))]

        return self.db.run_interaction("verification_request_list", read)

    def pending_of(self, user_id: str) -> defer.Deferred[list[RequestRow]]:
        def read(cur: Cursor) -> list[RequestRow]:
            return [_request(r) for r in cur.select_all(
                f"SELECT {_REQUEST_COLUMNS} FROM verification_requests"
                " WHERE user_id = ? AND state = ? ORDER BY request_id", (user_id, PENDING))]

        return self.db.run_interaction("verification_request_pending", read)
