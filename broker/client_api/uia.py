"""User-interactive authentication (UIA), shared by every endpoint that needs it.

An endpoint whose body type derives :class:`AuthenticatedBody` calls
:meth:`UserInteractiveAuth.check` with the body's ``auth`` and the flows it accepts.  Until one flow is
complete the call raises :class:`AuthRequired`, a 401 whose body is the spec's
``{flows, params, session, completed}`` (plus ``errcode``/``error`` when a submitted stage failed).
Sessions live in the database (``ui_auth_sessions``), are bound to the request's method, path and
user, expire after :data:`SESSION_LIFETIME_MS`, and are consumed when the operation goes ahead.

Stages: ``m.login.dummy`` (always passes), ``m.login.password`` (proves a local user's password;
on an authenticated request it must be the requester's own) and ``m.login.email.identity``
(a validated email session, ``threepid_creds``, proves the user whose official email it
validated; :mod:`broker.admin.password_by_email`).  The password helpers here
(:func:`user_id_from_identifier`, :class:`broker.services.accounts.Credentials`) are also what
``/login`` uses.  The node builds one :class:`UserInteractiveAuth` and hands it to the endpoint
groups that need it.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.web.http import Request

from broker.auth import Requester
from broker.errors import DomainError
from broker.http.bodies import Body
from broker.http.errors import MatrixError, forbidden
from broker.services.accounts import Credentials
from storage.users import UserStore

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
EMAIL_IDENTITY = "m.login.email.identity"
# The user a validated email session (sid, client secret) proves; a domain error if none.
EmailIdentity = Callable[[str, str], Awaitable[str]]
SESSION_LIFETIME_MS = 30 * 60 * 1000


class AuthRequired(MatrixError):
    """401: more UIA stages are needed.  Its body has no errcode unless a stage just failed."""

    def __init__(self, body: dict[str, Any], errcode: str = "", message: str = "") -> None:
        super().__init__(401, errcode or "M_FORBIDDEN", message or "Additional authentication "
                         "is required")
        self.body = body
        self.failed = bool(errcode)

    def to_json(self) -> dict[str, Any]:
        if self.failed:
            return {**self.body, "errcode": self.errcode, "error": self.message}
        return dict(self.body)


class Identifier(Body):
    type: str | None = None
    user: str | None = None


class NamesUser(Body):
    """A body naming a user: ``identifier`` {type m.id.user, user} or the legacy ``user``."""

    identifier: Identifier | None = None
    user: str | None = None


class ThreepidCreds(Body):
    """The validation session of an ``m.login.email.identity`` stage (the node is its own
    identity service: ``id_server`` and ``id_access_token`` are ignored)."""

    sid: str
    client_secret: str
    id_server: str | None = None
    id_access_token: str | None = None


class AuthData(NamesUser):
    """The ``auth`` object of a request that takes user-interactive auth."""

    type: str | None = None
    session: str | None = None
    password: str | None = None
    threepid_creds: ThreepidCreds | None = None


class AuthenticatedBody(Body):
    """A body of an endpoint that takes user-interactive auth."""

    auth: AuthData | None = None


def user_id_from_identifier(credentials: Credentials, body: NamesUser) -> str:
    """The user a login or password stage names, from ``identifier`` {type m.id.user, user}
    or the legacy top-level ``user``: a localpart or a full user ID, lower-cased.

    Unknown identifier types are 400 M_UNKNOWN; a user of another server is 403 M_FORBIDDEN.
    """
    identifier = body.identifier
    if identifier is not None:
        if identifier.type != "m.id.user":
            raise MatrixError(400, "M_UNKNOWN",
                              f"Unknown login identifier type {identifier.type!r}")
        user = identifier.user
    else:
        user = body.user
    if not user:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing 'identifier.user'")
    return credentials.user_id(user)


class UserInteractiveAuth:
    """Runs UIA for one endpoint at a time; one instance per node."""

    def __init__(self, store: UserStore, credentials: Credentials, clock: Any,
                 email_identity: EmailIdentity | None = None) -> None:
        self.store = store
        self.credentials = credentials
        self.clock = clock
        self.email_identity = email_identity

    async def check(
        self, request: Request, auth: AuthData | None, flows: list[list[str]], *,
        requester: Requester | None = None,
    ) -> dict[str, str]:
        """Return the completed stages (stage -> what it proved) once a flow is complete;
        otherwise raise :class:`AuthRequired` (or a 400/403 for a malformed attempt)."""
        now = self.clock.time_ms()
        user_id = requester.user_id if requester is not None else ""
        method = request.method.decode("ascii", "replace")
        uri = request.path.decode("utf-8", "replace")
        session_id = auth.session if auth is not None else None
        is_new = session_id is None
        completed: dict[str, str] = {}
        if session_id is None:
            session_id = secrets.token_urlsafe(24)
        else:
            session = await self.store.get_ui_auth_session(session_id)
            if session is None or session.created_ts < now - SESSION_LIFETIME_MS:
                raise MatrixError(400, "M_UNKNOWN", "Unknown or expired session ID")
            if (session.method, session.uri, session.user_id) != (method, uri, user_id):
                raise forbidden(
                    "Requested operation has changed during the UI authentication session")
            completed = dict(session.completed)
        challenge: dict[str, Any] = {
            "flows": [{"stages": flow} for flow in flows], "params": {}, "session": session_id}
        stage = auth.type if auth is not None else None
        try:
            if stage is not None:
                if not any(stage in flow for flow in flows):
                    raise MatrixError(400, "M_UNRECOGNIZED", f"Auth stage {stage!r} is not offered")
                assert auth is not None
                completed[stage] = await self._run_stage(stage, auth, requester, challenge,
                                                         completed)
            if any(all(s in completed for s in flow) for flow in flows):
                if not is_new:
                    await self.store.delete_ui_auth_session(session_id)
                return completed
            raise AuthRequired({**challenge, "completed": sorted(completed)})
        except AuthRequired:
            # Persisted only now: a request that completes at once never stores a session.
            if is_new:
                await self.store.purge_ui_auth_sessions(now - SESSION_LIFETIME_MS)
                await self.store.create_ui_auth_session(session_id, user_id, method, uri, now)
            if stage is not None and stage in completed:
                await self.store.complete_ui_auth_stage(session_id, stage, completed[stage])
            raise

    async def _run_stage(
        self, stage: str, auth: AuthData, requester: Requester | None,
        challenge: dict[str, Any], completed: dict[str, str],
    ) -> str:
        if stage == DUMMY:
            return ""
        failed = {**challenge, "completed": sorted(completed)}
        if stage == EMAIL_IDENTITY and self.email_identity is not None:
            return await self._email_stage(auth, requester, failed)
        if stage != PASSWORD:  # pragma: no cover - flows only ever name the stages above
            raise MatrixError(400, "M_UNRECOGNIZED", f"Auth stage {stage!r} is not supported")
        password = auth.password
        if not password:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'auth.password'")
        if requester is not None and auth.identifier is None and auth.user is None:
            user_id = requester.user_id
        else:
            user_id = user_id_from_identifier(self.credentials, auth)
        self.credentials.count_attempt(user_id)
        if requester is not None and user_id != requester.user_id:
            raise AuthRequired(failed, "M_FORBIDDEN",
                               "The password must be that of the logged-in user")
        if not await self.credentials.check_password(user_id, password):
            raise AuthRequired(failed, "M_FORBIDDEN", "Invalid username or password")
        return user_id

    async def _email_stage(self, auth: AuthData, requester: Requester | None,
                           failed: dict[str, Any]) -> str:
        """``m.login.email.identity``: a validated email session proves its user."""
        creds = auth.threepid_creds
        if creds is None:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'auth.threepid_creds'")
        assert self.email_identity is not None
        try:
            user_id = await self.email_identity(creds.sid, creds.client_secret)
        except DomainError as e:
            raise AuthRequired(failed, "M_THREEPID_AUTH_FAILED", e.message) from e
        if requester is not None and user_id != requester.user_id:
            raise AuthRequired(failed, "M_FORBIDDEN",
                               "The email session must be that of the logged-in user")
        return user_id
