"""A first (or forgotten) password by a code sent to the account's official email: the
Matrix flow of ``/account/password/email/requestToken``, the ``submit_url`` and the
``m.login.email.identity`` stage of user-interactive auth on ``/account/password``.

Only an account with an official email on record (the ``email`` an admin set, or the address
a verification by email proved) can get a code, so accounts created without a password (a
CSV import) get their first one this way.  The node sends the email itself (a six-digit code,
:mod:`broker.admin.email_codes`); the client submits it to ``submit_url``, which validates the
session; the session then proves the address to ``/account/password`` once, until the code
expires.  A retried ``requestToken`` (same address, client secret and a ``send_attempt`` not
above the last) answers the same session without a second email.  Every step is recorded in
the audit log, refusals (an unknown address, a wrong, reused or expired code) too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from broker.admin.audit import AuditLog
from broker.admin.email_codes import CodeRefused, OneTimeCodes
from broker.admin.model import Actor
from broker.errors import Conflict, DomainError, Forbidden, InvalidInput
from storage.accounts import AccountStore
from storage.email_codes import CodeRow, CodeUsed, EmailCodeStore

PURPOSE = "password"
REQUEST_ACTION = "password.email.request"
SUBMIT_ACTION = "password.email.submit"
SET_ACTION = "password.email.set"
ANONYMOUS = "anonymous"
CLIENT_SECRET = re.compile(r"[0-9a-zA-Z.=_-]{1,255}")
# What a refused code is to the submit_url (the Identity Service API's codes).
SUBMIT_ERRCODES = {"wrong": "M_TOKEN_INCORRECT", "used": "M_SESSION_EXPIRED",
                   "expired": "M_SESSION_EXPIRED", "attempts_exhausted": "M_SESSION_EXPIRED"}

# Writes the new password with what it takes (the hash in): the revoked token hashes.
WritePassword = Callable[[str], Awaitable[list[str]]]
SetPassword = Callable[[str, str, bool, str | None, WritePassword], Awaitable[None]]


class ThreepidNotFound(InvalidInput):
    errcode = "M_THREEPID_NOT_FOUND"


def _text(server_name: str, user_id: str) -> Callable[[str, int], str]:
    def text(code: str, minutes: int) -> str:
        return (f"Someone, hopefully you, asked {server_name} to set the password of"
                f" {user_id}, whose official email this is.\n\n"
                f"Your code is {code}\n\n"
                f"Enter it in your Matrix client. It is valid for {minutes} minutes and can be"
                " used once. If you did not ask for it, ignore this email: your password does"
                " not change without the code.\n")

    return text


class PasswordByEmail:
    def __init__(self, codes: OneTimeCodes, store: EmailCodeStore, accounts: AccountStore,
                 audit: AuditLog, set_password: SetPassword, server_name: str) -> None:
        self.codes = codes
        self.store = store
        self.accounts = accounts
        self.audit = audit
        self.set_password_with = set_password
        self.clock = codes.clock
        self.server_name = server_name

    async def request_token(self, client_ip: str, client_secret: str, email: str,
                            send_attempt: int) -> str:
        """Email a code for the account whose official email ``email`` is; the sid."""
        actor = Actor(ANONYMOUS, client_ip)
        async with self.audit.recording(actor, REQUEST_ACTION) as entry:
            if not self.codes.mailer.enabled:
                raise Forbidden("This node sends no email: ask an admin to set your password",
                                errcode="M_THREEPID_DENIED")
            if not CLIENT_SECRET.fullmatch(client_secret):
                raise InvalidInput("'client_secret' may hold only 0-9, a-z, A-Z, '.', '=',"
                                   " '_' and '-' (1 to 255 of them)")
            entry.detail["email"] = email
            users = await self.accounts.users_with_email(email)
            if len(users) != 1:
                raise ThreepidNotFound(
                    "No account has this official email" if not users else
                    "Several accounts have this official email: ask an admin to set it apart")
            entry.target = user_id = users[0]
            before = await self.store.session(PURPOSE, email, client_secret)
            if before is not None and before.send_attempt is not None \
                    and send_attempt <= before.send_attempt and before.used_ts is None:
                return before.sid  # a retry: no second email
            row = await self.codes.issue(
                PURPOSE, user_id, email, None, entry, f"Your password code for {user_id}",
                _text(self.server_name, user_id), (client_secret, send_attempt))
            return row.sid

    async def submit_token(self, client_ip: str, sid: str, client_secret: str, token: str
                           ) -> None:
        """The code sent back to ``submit_url``: the session now proves the address."""
        async with self.audit.recording(Actor(ANONYMOUS, client_ip), SUBMIT_ACTION) as entry:
            entry.detail["sid"] = sid
            try:
                row = await self.codes.check(sid, token, PURPOSE, None)
            except CodeRefused as e:
                raise InvalidInput(e.message, errcode=SUBMIT_ERRCODES[e.reason],
                                   reason=e.reason) from e
            except DomainError as e:
                raise InvalidInput("No such validation session", errcode="M_INVALID_PARAM"
                                   ) from e
            if row.client_secret != client_secret:
                raise InvalidInput("No such validation session", errcode="M_INVALID_PARAM")
            entry.target = row.user_id
            await self.store.validate(sid, self.clock.time_ms(), entry.draft())

    async def _proven(self, sid: str, client_secret: str) -> CodeRow:
        row = await self.store.get(sid)
        if row is None or row.purpose != PURPOSE or row.client_secret != client_secret:
            raise Forbidden("No such validation session")
        if row.validated_ts is None:
            raise Forbidden("The emailed code has not been submitted yet")
        if row.used_ts is not None:
            raise Forbidden("This validation session has been used already")
        if row.expires_ts <= self.clock.time_ms():
            raise Forbidden("This validation session has expired; ask for a new code")
        return row

    async def proven_user(self, sid: str, client_secret: str) -> str:
        """The user whose official email a validated session proves (the UIA stage);
        Forbidden if it proves nothing (recorded)."""
        async with self.audit.recording(Actor(ANONYMOUS, ""), SET_ACTION) as entry:
            entry.detail["sid"] = sid
            return (await self._proven(sid, client_secret)).user_id

    async def set_password(self, client_ip: str, creds: tuple[str, str], user_id: str,
                           new_password: str, logout_devices: bool,
                           keep_device_id: str | None) -> None:
        """Set ``user_id``'s password with the session ``creds`` (sid, client secret) proves
        (used up in the same transaction)."""
        sid, client_secret = creds
        async with self.audit.recording(Actor(user_id, client_ip), SET_ACTION,
                                        user_id) as entry:
            entry.detail.update(sid=sid, logout_devices=logout_devices)
            row = await self._proven(sid, client_secret)
            if row.user_id != user_id:
                raise Forbidden("The validation session is another account's")
            now = self.clock.time_ms()

            async def write(password_hash: str) -> list[str]:
                try:
                    return await self.store.set_password(
                        sid, row.user_id, password_hash, keep_device_id, logout_devices, now,
                        entry.draft())
                except CodeUsed as e:
                    raise Conflict("This validation session has been used already") from e

            await self.set_password_with(row.user_id, new_password, logout_devices,
                                         keep_device_id, write)

