"""One-time codes sent by email: issuing one (rate-limited, emailed, then stored) and checking
one that comes back.

A code is six random digits (:mod:`secrets`).  Only an HMAC-SHA256 of it is stored, keyed
with a secret derived from the node's signing key, so the database alone does not reveal
codes.  It expires after ``email.codes.lifetime_seconds``, takes ``max_attempts`` wrong
tries, and is used once: the caller marks it used (:func:`storage.email_codes.use_code`) in
the transaction of what it allows.  Asking for codes is limited per address and per user
(``rate_limits.email_codes``, two buckets).  The email is sent before anything is stored: a
code that could not be sent leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from broker.admin.audit import Recording
from broker.config import EmailCodes
from broker.errors import Forbidden, NotFound
from storage.email_codes import CodeRow, EmailCodeStore

CODE_DIGITS = 6
RATE_LIMIT = "email_codes"


class SendMail(Protocol):
    @property
    def enabled(self) -> bool: ...

    async def send(self, to: str, subject: str, text: str) -> None: ...


class CheckRate(Protocol):
    def check(self, action: str, key: str, *, exempt: bool = False) -> None: ...


class CodeRefused(Forbidden):
    """The code is wrong, expired, used or out of tries; ``reason`` says which."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


def code_secret(seed: bytes) -> bytes:
    """The key of the codes' HMAC, derived from the node's signing key seed."""
    return hashlib.sha256(b"in.gov.broker.email_codes\0" + seed).digest()


class OneTimeCodes:
    def __init__(self, store: EmailCodeStore, mailer: SendMail, rates: CheckRate, clock: Any,
                 settings: EmailCodes, secret: bytes) -> None:
        self.store = store
        self.mailer = mailer
        self.rates = rates
        self.clock = clock
        self.settings = settings
        self.secret = secret

    def _hash(self, sid: str, code: str) -> str:
        return hmac.new(self.secret, f"{sid}:{code}".encode(), hashlib.sha256).hexdigest()

    async def issue(self, purpose: str, user_id: str, address: str, org_id: str | None,
                    entry: Recording, subject: str, text: Callable[[str, int], str],
                    session: tuple[str, int] | None = None) -> CodeRow:
        """Email a new code to ``address`` (``text(code, minutes)`` is the email's text) and
        store it with ``entry`` (which names its ``sid``); ``session`` is the Matrix client's
        secret and send attempt, if any.  LimitExceeded when the address or the user asked
        too often."""
        self.rates.check(RATE_LIMIT, f"address:{address.lower()}")
        self.rates.check(RATE_LIMIT, f"user:{user_id}")
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        sid = secrets.token_urlsafe(18)
        now = self.clock.time_ms()
        lifetime = self.settings.lifetime_seconds
        await self.mailer.send(address, subject, text(code, lifetime // 60))
        secret, attempt = session if session is not None else (None, None)
        row = CodeRow(sid, purpose, user_id, address, org_id, self._hash(sid, code), now,
                      now + lifetime * 1000, client_secret=secret, send_attempt=attempt)
        entry.detail["sid"] = sid
        await self.store.add(row, entry.draft())
        return row

    async def check(self, sid: str, code: str, purpose: str, user_id: str | None) -> CodeRow:
        """The code ``sid`` if ``code`` is right and it may still be used (by ``user_id``,
        when given); otherwise :class:`CodeRefused` (a wrong code counts as a try)."""
        row = await self.store.get(sid)
        if row is None or row.purpose != purpose or user_id not in (None, row.user_id):
            raise NotFound("No such code was sent (unknown sid)")
        if row.used_ts is not None:
            raise CodeRefused("This code has been used already; ask for a new one", "used")
        if row.expires_ts <= self.clock.time_ms():
            raise CodeRefused("This code has expired; ask for a new one", "expired")
        if row.attempts >= self.settings.max_attempts:
            raise CodeRefused("This code was tried too many times; ask for a new one",
                              "attempts_exhausted")
        if not hmac.compare_digest(self._hash(sid, code), row.code_hash):
            tried = await self.store.count_attempt(sid)
            left = max(self.settings.max_attempts - tried, 0)
            raise CodeRefused(f"The code is wrong ({left} tries left)", "wrong")
        return row
