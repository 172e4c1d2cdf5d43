"""The configured application services, as the Client-Server API meets them.

A request carrying a service's ``as_token`` is the service: its sender user, or with
``?user_id=`` a user of its user namespaces that it registered (masquerading).  Registration
with ``type: m.login.application_service`` creates users of its namespaces; a user ID in a
service's exclusive namespace is refused to everyone else (M_EXCLUSIVE).

Lookups are memory: the services are indexed by the hash of their as_token and by id, and the
users known to exist are remembered (a budget of them), so a masqueraded request usually costs
no query.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache

from broker.appservice.client import AppServiceClient
from broker.appservice.registration import Registration
from broker.auth import Requester, hash_token
from broker.errors import Forbidden, InvalidInput, MissingInput, Unauthenticated
from storage.users import UserStore

APPSERVICE_LOGIN = "m.login.application_service"
# Users of the services' namespaces remembered as registered (~100 bytes each).
KNOWN_USERS = 100_000
# The device of a service's requests (it has no device unless it logs one in).
NO_DEVICE = ""


class AppServices:
    def __init__(self, registrations: Sequence[Registration], users: UserStore, clock: Any,
                 server_name: str, client: AppServiceClient | None = None,
                 known_users: int = KNOWN_USERS) -> None:
        self.registrations = tuple(registrations)
        self.client = client
        self.users = users
        self.clock = clock
        self.server_name = server_name
        self._by_token = {hash_token(r.as_token): r for r in self.registrations}
        self._by_id = {r.id: r for r in self.registrations}
        self._known: LRUCache[str, bool] = LRUCache(maxsize=known_users)

    def __bool__(self) -> bool:
        return bool(self.registrations)

    def for_token(self, token: str) -> Registration | None:
        """The service whose as_token this is (None: not a service's token)."""
        service = self._by_token.get(hash_token(token))
        if service is not None and hmac.compare_digest(service.as_token, token):
            return service
        return None

    def by_id(self, service_id: str) -> Registration | None:
        return self._by_id.get(service_id)

    def exclusive_owner(self, user_id: str) -> Registration | None:
        """The service whose exclusive user namespace covers ``user_id``, if any."""
        return next((r for r in self.registrations if r.owns_user(user_id)), None)

    def refuse_exclusive(self, user_id: str, service: Registration | None = None) -> None:
        """M_EXCLUSIVE if ``user_id`` is reserved by a service other than ``service``."""
        owner = self.exclusive_owner(user_id)
        if owner is not None and owner is not service:
            raise InvalidInput(f"{user_id} is reserved by an application service",
                               errcode="M_EXCLUSIVE")

    # -- queries: before answering "unknown" ------------------------------------------------
    async def ask_for_user(self, user_id: str) -> bool:
        """Whether the service owning ``user_id`` (an exclusive namespace) says, asked with
        ``GET /users/{userId}``, that it exists (it registers it before answering 200)."""
        owner = self.exclusive_owner(user_id)
        if owner is None or owner.url is None or self.client is None:
            return False
        return await self.client.query_user(owner, user_id)

    async def ask_for_invitees(self, user_ids: list[str]) -> None:
        """Ask about each invitee of an exclusive namespace not known to exist (before a
        room is created with them invited)."""
        for user_id in user_ids:
            if self.exclusive_owner(user_id) is not None and not await self._registered(user_id):
                await self.ask_for_user(user_id)

    async def ask_for_alias(self, alias: str) -> bool:
        """Whether a service whose alias namespaces cover ``alias`` created it when asked
        with ``GET /rooms/{roomAlias}`` (the first that says so)."""
        if self.client is None:
            return False
        for service in self.registrations:
            if service.url is not None and service.in_alias_namespace(alias) \
                    and await self.client.query_alias(service, alias):
                return True
        return False

    def refuse_exclusive_alias(self, alias: str, creator: str) -> None:
        """M_EXCLUSIVE if ``alias`` is in a service's exclusive alias namespace and
        ``creator`` is not one of that service's users."""
        for service in self.registrations:
            if service.in_alias_namespace(alias, exclusive=True) \
                    and not service.in_user_namespace(creator):
                raise InvalidInput(f"{alias} is reserved by an application service",
                                   errcode="M_EXCLUSIVE")

    async def start(self) -> None:
        """Create each service's sender user if it does not exist yet."""
        for service in self.registrations:
            if await self.users.get_user(service.sender) is None:
                await self.users.create_user(service.sender, None, self.clock.time_ms())
            self._known[service.sender] = True

    async def requester(self, service: Registration, user_id: str | None) -> Requester:
        """Who a request of ``service`` acts as: its sender, or ``user_id`` if that is a
        registered user of its namespaces (403 M_EXCLUSIVE outside them, M_FORBIDDEN if the
        service has not registered it)."""
        target = user_id or service.sender
        if not service.in_user_namespace(target):
            raise Forbidden(f"{target} is not in the namespace of application service "
                            f"{service.id}", errcode="M_EXCLUSIVE")
        if not await self._registered(target):
            raise Forbidden(f"Application service has not registered {target}")
        exempt = target == service.sender or not service.rate_limited
        return Requester(target, NO_DEVICE, False, hash_token(service.as_token),
                         app_service=service.id, rate_exempt=exempt)

    def forget(self, user_id: str) -> None:
        """A deactivated account: no longer a registered user to act as (it is asked of the
        database again, which says deactivated)."""
        self._known.pop(user_id, None)

    async def _registered(self, user_id: str) -> bool:
        if self._known.get(user_id):
            return True
        row = await self.users.get_user(user_id)
        if row is None or row["deactivated"]:
            return False
        self._known[user_id] = True
        return True

    async def login(self, token: str | None, user_id: str) -> None:
        """Check an ``m.login.application_service`` login of ``user_id``: the token is a
        service's, and the user a registered one of its namespace (as for masquerading)."""
        service = self._service_of(token)
        await self.requester(service, user_id)

    def _service_of(self, token: str | None) -> Registration:
        service = self.for_token(token) if token else None
        if service is None:
            raise Unauthenticated("m.login.application_service needs an application "
                                  "service's as_token", errcode="M_MISSING_TOKEN"
                                  if not token else "M_UNKNOWN_TOKEN")
        return service

    async def register(self, token: str | None, user_id: str | None) -> str:
        """Register ``user_id`` for the service whose as_token ``token`` is; the user ID.
        M_EXCLUSIVE outside its namespaces, M_USER_IN_USE if it exists."""
        service = self._service_of(token)
        if user_id is None:
            raise MissingInput("An application service registers a user by its 'username'")
        if not service.in_user_namespace(user_id):
            raise InvalidInput(f"{user_id} is not in the namespace of application service "
                               f"{service.id}", errcode="M_EXCLUSIVE")
        self.refuse_exclusive(user_id, service)
        if await self.users.get_user(user_id) is not None:
            raise InvalidInput("User ID already taken", errcode="M_USER_IN_USE")
        await self.users.create_user(user_id, None, self.clock.time_ms())
        self._known[user_id] = True
        return user_id
