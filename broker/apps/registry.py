"""eGov applications: registering one, reading them, rotating a token, revoking one.

An ``app_manager`` (or an admin) of an organisation registers an application; it gets a
sender account (``@_app.<app_id>:<server>``, the app's name as display name, a verified member
of the organisation with the designation "Application", so clients show it the badge other
verified accounts show; nobody logs in as it), an API token (shown once, stored as its SHA-256
hash), an HMAC secret for its callbacks and the message kinds it may send.  Every call asks
:mod:`broker.admin.permissions` and is recorded in the audit log, a change in its own
transaction.

What the application API asks on every request is answered from memory: :meth:`Apps.by_token`
(the token's hash) and :meth:`Apps.callback_of`.  Memory is loaded in ``Node.start`` and
updated by this node's changes and by those of other processes (``broker apps ...``), which
reach it through the audit log (:meth:`Apps.changes_seen`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

from twisted.internet import defer

from broker.admin import permissions
from broker.admin.audit import AuditLog, Recording
from broker.admin.authority import Authority
from broker.admin.classes import UserClasses
from broker.admin.model import Actor, BadField, Tree, check_body
from broker.admin.model import _name as check_name
from broker.admin.reachability import Reachability
from broker.apps.tracking import CallbackTarget
from broker.auth import hash_token
from broker.errors import NotFound, Unauthenticated
from broker.org_accounts import APP_PREFIX
from storage.accounts import AccountStore, NewAccount, VerificationRow
from storage.apps import AppRow, AppStore
from storage.audit import Change
from storage.organisations import Member

logger = logging.getLogger(__name__)

KINDS = ("otp", "alert", "notification")
DESIGNATION = "Application"  # the sender account's designation: clients show it
BASIS = "application"  # the sender's verification: made with the registration
TOKEN_PREFIX = "brk_app_"
ACTIONS = frozenset({"apps.register", "apps.update", "apps.rotate_token", "apps.revoke"})
REGISTER_FIELDS = ("name", "organisation", "callback_url", "kinds")
UPDATE_FIELDS = ("callback_url", "kinds")

CheckUrl = Callable[[str], Awaitable[None]]


def new_app_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def app_json(app: AppRow) -> dict[str, Any]:
    """What the admin API shows of an app (never its token or its hash)."""
    return {"app_id": app.app_id, "name": app.name, "organisation": app.org_id,
            "sender": app.sender, "callback_url": app.callback_url, "kinds": list(app.kinds),
            "created_by": app.created_by, "created_at": app.created_ts,
            "token_rotated_at": app.token_ts, "revoked": app.revoked_ts is not None,
            "revoked_at": app.revoked_ts}


def _kinds(value: Any) -> tuple[str, ...]:
    if value is None:
        return KINDS
    if not isinstance(value, list) or not value or not all(isinstance(k, str) for k in value):
        raise BadField("kinds", f"must be a non-empty list of: {', '.join(KINDS)}")
    unknown = [k for k in value if k not in KINDS]
    if unknown:
        raise BadField("kinds", f"unknown kind {unknown[0]!r} (expected: {', '.join(KINDS)})",
                       errcode="M_INVALID_PARAM")
    return tuple(dict.fromkeys(value))


class Apps:
    def __init__(self, store: AppStore, accounts: AccountStore, authority: Authority,
                 audit: AuditLog, classes: UserClasses, reachability: Reachability,
                 clock: Any, server_name: str, check_url: CheckUrl) -> None:
        self.store = store
        self.accounts = accounts
        self.authority = authority
        self.audit = audit
        self.classes = classes
        self.reachability = reachability  # senders are reachable by the public
        self.clock = clock
        self.server_name = server_name
        self.check_url = check_url
        self._apps: dict[str, AppRow] = {}  # app ID -> the app (revoked ones too)
        self._tokens: dict[str, str] = {}  # token hash -> app ID (live apps only)

    # -- memory ------------------------------------------------------------------------------
    async def load(self) -> None:
        self._hold(await self.store.all())

    def _hold(self, rows: Iterable[AppRow]) -> None:
        apps = {row.app_id: row for row in rows}
        self._apps = apps
        self._tokens = {a.token_hash: a.app_id for a in apps.values() if a.revoked_ts is None}

    def _put(self, app: AppRow) -> None:
        old = self._apps.get(app.app_id)
        if old is not None:
            self._tokens.pop(old.token_hash, None)
        self._apps[app.app_id] = app
        if app.revoked_ts is None:
            self._tokens[app.token_hash] = app.app_id

    def by_token(self, token: str) -> AppRow:
        """The live app ``token`` belongs to; Unauthenticated (M_UNKNOWN_TOKEN) otherwise."""
        app_id = self._tokens.get(hash_token(token))
        if app_id is None:
            raise Unauthenticated("Unknown or revoked application token")
        return self._apps[app_id]

    def app(self, app_id: str) -> AppRow | None:
        return self._apps.get(app_id)

    def callback_of(self, app_id: str) -> CallbackTarget | None:
        """Where the app's status callbacks go (None: it has no callback URL)."""
        app = self._apps.get(app_id)
        if app is None or app.callback_url is None:
            return None
        return CallbackTarget(app.callback_url, app.callback_secret)

    def changes_seen(self, changes: list[Change]) -> None:
        """Changes of apps made by another process (a command): read the apps again."""
        if any(c.action in ACTIONS for c in changes):
            defer.ensureDeferred(self._reload()).addErrback(
                lambda f: logger.error("reading the apps again failed: %s", f.value))

    async def _reload(self) -> None:
        rows = await self.store.all()
        new = [r.sender for r in rows if r.app_id not in self._apps]
        self._hold(rows)
        if new:  # their senders are verified and reachable: memory learns it
            for row in await self.accounts.current_of(new):
                self.classes.verified(row)
                self.reachability.force(row.user_id, True)

    # -- admin calls -------------------------------------------------------------------------
    async def register(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        """Register an app; its JSON with the token and callback secret (shown this once)."""
        async with self.audit.recording(actor, "apps.register") as entry:
            check_body(body, REGISTER_FIELDS, ("name", "organisation"))
            name = check_name(body["name"], "name")
            org_id = body["organisation"]
            if not isinstance(org_id, str):
                raise BadField("organisation", "must be an organisation ID")
            entry.organisation = org_id
            tree = await self._require(actor, permissions.APPS_CHANGE, org_id)
            if org_id not in tree:
                raise BadField("organisation", f"unknown organisation {org_id!r}",
                               errcode="M_INVALID_PARAM")
            kinds = _kinds(body.get("kinds"))
            url = body.get("callback_url")
            if url is not None:
                await self.check_url(url)
            app_id = secrets.token_hex(8)
            entry.target = app_id
            token = new_app_token()
            now = entry.ts
            app = AppRow(app_id, name, org_id, f"@{APP_PREFIX}{app_id}:{self.server_name}",
                         hash_token(token), url, secrets.token_urlsafe(32), kinds,
                         actor.user_id, now, now)
            verification = VerificationRow(secrets.token_hex(12), app.sender, org_id, BASIS,
                                           actor.user_id, now)
            sender = NewAccount(app.sender, None, now, name,
                                Member(app.sender, org_id, DESIGNATION), verification)
            entry.detail.update(name=name, sender=app.sender, kinds=list(kinds),
                                callback_url=url)
            await self.store.create(app, sender, entry.draft())
            self._put(app)
            self.classes.verified(verification)
            self.reachability.force(app.sender, True)
            return {**app_json(app), "token": token, "callback_secret": app.callback_secret}

    async def list(self, actor: Actor, organisation: str | None) -> dict[str, Any]:
        """The apps of the organisations the actor may read (of ``organisation``'s sub-tree
        if given)."""
        async with self.audit.recording(actor, permissions.APPS_READ) as entry:
            entry.organisation = organisation
            _tree, _grants, scope = await self.authority.scope(actor, permissions.APPS_READ,
                                                               organisation)
            shown = set(scope) if scope is not None else None
            return {"apps": [app_json(a) for a in self._apps.values()
                             if shown is None or a.org_id in shown]}

    async def get(self, actor: Actor, app_id: str) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.APPS_READ, app_id) as entry:
            app = await self._located(actor, entry, permissions.APPS_READ)
            return app_json(app)

    async def update(self, actor: Actor, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change the app's callback URL (null: none) or kinds; the fields not given stay."""
        async with self.audit.recording(actor, "apps.update", app_id) as entry:
            app = await self._located(actor, entry, permissions.APPS_CHANGE, live=True)
            check_body(body, UPDATE_FIELDS)
            changed = app
            if "kinds" in body:
                changed = replace(changed, kinds=_kinds(body["kinds"]))
            if "callback_url" in body:
                url = body["callback_url"]
                if url is not None:
                    await self.check_url(url)
                changed = replace(changed, callback_url=url)
            entry.detail.update(changed={k: body[k] for k in sorted(body)})
            await self.store.update(changed, entry.draft())
            self._put(changed)
            return app_json(changed)

    async def rotate_token(self, actor: Actor, app_id: str) -> dict[str, Any]:
        """A new token for the app (the old one stops working at once); shown this once."""
        async with self.audit.recording(actor, "apps.rotate_token", app_id) as entry:
            app = await self._located(actor, entry, permissions.APPS_CHANGE, live=True)
            token = new_app_token()
            rotated = replace(app, token_hash=hash_token(token), token_ts=entry.ts)
            await self.store.set_token(app_id, rotated.token_hash, entry.ts, entry.draft())
            self._put(rotated)
            return {**app_json(rotated), "token": token}

    async def revoke(self, actor: Actor, app_id: str) -> dict[str, Any]:
        """Revoke the app: its token stops working at once; its record stays."""
        async with self.audit.recording(actor, "apps.revoke", app_id) as entry:
            app = await self._located(actor, entry, permissions.APPS_CHANGE, live=True)
            revoked = replace(app, revoked_ts=entry.ts)
            await self.store.revoke(app_id, entry.ts, entry.draft())
            self._put(revoked)
            return app_json(revoked)

    async def _require(self, actor: Actor, action: str, org_id: str | None) -> Tree:
        tree, _grants = await self.authority.require(actor, action, org_id)
        return tree

    async def _located(self, actor: Actor, entry: Recording, action: str, *,
                       live: bool = False) -> AppRow:
        app = self._apps.get(entry.target)
        if app is None:
            raise NotFound(f"no app {entry.target!r}")
        entry.organisation = app.org_id
        await self._require(actor, action, app.org_id)
        if live and app.revoked_ts is not None:
            raise NotFound(f"the app {entry.target!r} is revoked")
        return app
