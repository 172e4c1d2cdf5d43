"""Account validity: an account is valid for a period from its creation or last renewal.

With ``account_validity.enabled`` every account has an expiry (``users.expires_ts``): set when
it is registered, given by :class:`AccountValidity`'s job (at start, then hourly) to accounts
that have none (made before validity was enabled, or by a command), and moved by a renewal.
A request of an expired account is refused by the router's guards with Synapse's
``ORG_MATRIX_EXPIRED_ACCOUNT`` (so clients know it), except the routes that declare
``allow_expired`` (logout).  The check reads the expiry the access-token cache holds with the
requester, so it costs no database round trip; a renewal drops the user's cached sessions.
Node admins are not held to it, so the node always keeps someone who can renew.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from broker.auth import Auth, Requester, hash_token
from broker.clock import Clock
from broker.errors import Forbidden
from broker.periodic import Periodic
from storage.account_validity import AccountValidityStore
from storage.audit import AuditDraft

logger = logging.getLogger(__name__)

# How often accounts without an expiry are given one, and how many per transaction.
GIVE_INTERVAL_S = 3600
BATCH = 500
RENEW_PATH = "/_broker/client/v1/account_validity/renew"
RENEW_ACTION = "users.renew"  # the audit action of a renewal, by an admin or by email


@dataclass(frozen=True)
class ValiditySettings:
    """``account_validity`` in the config."""

    enabled: bool = False
    period_ms: int = 0
    renew_before_ms: int | None = None  # a renewal email this long before the expiry


class Mail(Protocol):
    @property
    def enabled(self) -> bool: ...

    async def send(self, to: str, subject: str, text: str) -> None: ...


class AccountValidity:
    def __init__(self, settings: ValiditySettings, store: AccountValidityStore, auth: Auth,
                 clock: Clock, batch: int = BATCH, mail: Mail | None = None,
                 public_baseurl: str | None = None) -> None:
        self.settings = settings
        self.mail = mail
        self.public_baseurl = public_baseurl
        self.emails_sent = 0
        self.store = store
        self.auth = auth
        self.clock = clock
        self.batch = batch
        self.given = 0  # accounts given an expiry since the node started
        self.job = Periodic(self._run, "account validity: giving expiries and emails")

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def expiry_for_new(self, now_ms: int) -> int | None:
        """The expiry of an account created at ``now_ms`` (None: validity is off)."""
        return now_ms + self.settings.period_ms if self.enabled else None

    def renewed_expiry(self) -> int:
        """The expiry a renewal now gives when it names none."""
        return self.clock.time_ms() + self.settings.period_ms

    def expired(self, requester: Requester) -> bool:
        """Whether the requester's account has expired (from memory)."""
        return (self.enabled and not requester.is_admin and requester.expires_ts is not None
                and requester.expires_ts <= self.clock.time_ms())

    def start(self, reactor: Any) -> None:
        if self.enabled:
            self.job.start(reactor, GIVE_INTERVAL_S)

    def stop(self) -> None:
        self.job.stop()

    def created(self, user_id: str) -> None:
        """An account was made without an expiry (the admin API, an import): give it one now,
        off the request (the next hourly run does if this fails)."""
        if self.enabled:
            self.job.run_soon()

    async def _run(self) -> None:
        await self.give_missing()
        await self.send_renewal_emails()

    async def give_missing(self) -> int:
        """Give every active account without an expiry one a period from now, a batch per
        transaction; how many were given one."""
        done = 0
        while True:
            ids = await self.store.give_expiry(self.renewed_expiry(), self.batch)
            for user_id in ids:
                self.auth.forget_user(user_id)  # a cached session holds no expiry
            done += len(ids)
            if len(ids) < self.batch:
                break
        self.given += done
        if done:
            logger.info("account validity: gave %d accounts an expiry", done)
        return done

    def renewed(self, user_id: str) -> None:
        """The user's expiry changed: their sessions are read again."""
        self.auth.forget_user(user_id)

    # -- renewal emails ----------------------------------------------------------------------
    def renewal_link(self, token: str) -> str:
        base = (self.public_baseurl or "").rstrip("/")
        return f"{base}{RENEW_PATH}?token={token}"

    async def send_renewal_emails(self) -> int:
        """Email a renewal link to each account expiring within ``renew_before`` that has an
        official email and was sent none for this expiry; how many were sent.  A send that
        fails ends the run (the next one tries again)."""
        renew_before = self.settings.renew_before_ms
        if not self.enabled or renew_before is None or self.mail is None \
                or not self.mail.enabled or not self.public_baseurl:
            return 0
        sent = 0
        while True:
            due = await self.store.due_for_email(self.clock.time_ms() + renew_before,
                                                 self.batch)
            for user_id, email, expires_ts in due:
                token = secrets.token_urlsafe(32)
                try:
                    await self.mail.send(email, "Renew your account", _renewal_text(
                        user_id, expires_ts, self.renewal_link(token)))
                except Exception:
                    logger.exception("account validity: the renewal email to %s failed",
                                     user_id)
                    return sent
                await self.store.email_sent(user_id, hash_token(token), self.clock.time_ms())
                sent += 1
                self.emails_sent += 1
            if len(due) < self.batch:
                return sent

    async def renew_by_token(self, token: str, address: str | None) -> dict[str, Any]:
        """Renew the account a renewal email's ``token`` was sent to, for a period from now,
        recorded in the audit log as the user's own renewal; Forbidden for a token that is
        unknown or was used (a renewal clears it)."""
        owner = await self.store.owner_of_token(hash_token(token)) if token else None
        if owner is None or not self.enabled:
            raise Forbidden("This renewal link is not valid (unknown, used or replaced)")
        user_id, organisation = owner
        now, expires_ts = self.clock.time_ms(), self.renewed_expiry()
        await self.store.renew(user_id, expires_ts, AuditDraft(
            now, user_id, RENEW_ACTION, user_id, organisation, address or "", "ok",
            {"expires_at": expires_ts, "by": "email"}))
        self.renewed(user_id)
        return {"user_id": user_id, "expires_at": expires_ts}


def _renewal_text(user_id: str, expires_ts: int, link: str) -> str:
    when = datetime.fromtimestamp(expires_ts / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Your account {user_id} expires on {when}.\n\n"
            f"To keep using it, open this link before then:\n\n{link}\n\n"
            "If you no longer need the account, ignore this email: it will stop working.\n")
