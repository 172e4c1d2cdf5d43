"""Local accounts: passwords, sessions (access tokens on devices), registration, the devices of
an account and the account's end (deactivation).

Every revoked token is also dropped from the token cache (:class:`broker.auth.Auth`), so it
stops working at once; every deleted device is handed to ``devices_deleted`` (end-to-end
encryption: its keys go and the device-list change is published).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from broker.auth import Auth, Requester
from broker.errors import Forbidden, InvalidInput, NotFound, Unavailable
from broker.org_accounts import RESERVED_PREFIX, is_reserved_localpart
from broker.ratelimit import RateLimiter
from protocol.identifiers import is_new_localpart
from storage.database import IntegrityError
from storage.users import Device, UserStore

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 512
MAX_USER_ID_LENGTH = 255

DevicesDeleted = Callable[[str, Iterable[str]], Awaitable[None]]

def check_new_password(password: str) -> None:
    """The password policy for new passwords: M_WEAK_PASSWORD if too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Password must be at least {MIN_PASSWORD_LENGTH} characters",
                           errcode="M_WEAK_PASSWORD")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"Password must be at most {MAX_PASSWORD_LENGTH} characters")


class Credentials:
    """Who a login or a password stage names, and whether the password is theirs."""

    def __init__(self, users: UserStore, auth: Auth, limiter: RateLimiter,
                 server_name: str) -> None:
        self.users = users
        self.passwords = auth.passwords
        self.limiter = limiter
        self.server_name = server_name
        # Argon2id hash of a random throwaway password, made on first need: unknown users
        # cost the same time as known ones.
        self._dummy_hash: str | None = None

    def user_id(self, user: str) -> str:
        """A localpart or a full user ID, lower-cased; another server's user is refused."""
        if user.startswith("@"):
            if user.split(":", 1)[-1] != self.server_name:
                raise Forbidden("Invalid username or password")
            return user.lower()
        return f"@{user.lower()}:{self.server_name}"

    async def check_password(self, user_id: str, password: str) -> bool:
        """Whether ``password`` is ``user_id``'s current password (False for unknown users, in
        about the same time).  Deactivated accounts have no password."""
        user = await self.users.get_user(user_id)
        if user is None or not user["password_hash"]:
            if self._dummy_hash is None:
                self._dummy_hash = await self.passwords.hash(secrets.token_hex(16))
            await self.passwords.verify(self._dummy_hash, password)
            return False
        return await self.passwords.verify(user["password_hash"], password)

    def count_attempt(self, user_id: str) -> None:
        """Take a token from the user's login limit (every password tried counts)."""
        self.limiter.check("login", f"user:{user_id}")

    async def login(self, user_id: str, password: str) -> None:
        """Nothing if the password is right; 403 otherwise (M_USER_DEACTIVATED when the
        account was deactivated)."""
        self.count_attempt(user_id)
        if not await self.check_password(user_id, password):
            user = await self.users.get_user(user_id)
            if user is not None and user["deactivated"]:
                raise Forbidden("This account has been deactivated",
                                errcode="M_USER_DEACTIVATED")
            raise Forbidden("Invalid username or password")


class Accounts:
    def __init__(self, users: UserStore, auth: Auth, limiter: RateLimiter, clock: Any,
                 server_name: str, public_baseurl: str | None, registration_enabled: bool,
                 devices_deleted: DevicesDeleted,
                 leave_all_rooms: Callable[[str], Awaitable[None]],
                 new_expiry: Callable[[int], int | None] = lambda now_ms: None) -> None:
        self.users = users
        self.new_expiry = new_expiry  # account validity: the expiry of an account made now
        self.auth = auth
        self.limiter = limiter
        self.clock = clock
        self.server_name = server_name
        self.public_baseurl = public_baseurl
        self.registration_enabled = registration_enabled
        self.devices_deleted = devices_deleted
        self.leave_all_rooms = leave_all_rooms

    # -- sessions ----------------------------------------------------------------------------
    async def new_session(self, user_id: str, device_id: str | None, name: str | None,
                          ip: str | None) -> dict[str, Any]:
        """A new access token for ``user_id`` as the body of a login or register response."""
        token, device_id = await self.auth.create_session(user_id, device_id, name, ip)
        response: dict[str, Any] = {"user_id": user_id, "access_token": token,
                                    "device_id": device_id, "home_server": self.server_name}
        if self.public_baseurl:
            response["well_known"] = {"m.homeserver": {"base_url": self.public_baseurl}}
        return response

    async def logout(self, requester: Requester) -> None:
        revoked = await self.users.delete_devices(requester.user_id, [requester.device_id])
        self.auth.forget_tokens([requester.token_hash, *revoked])
        await self.devices_deleted(requester.user_id, [requester.device_id])

    async def logout_all(self, requester: Requester) -> None:
        devices = await self.users.get_devices(requester.user_id)
        revoked = await self.users.delete_all_devices(requester.user_id)
        self.auth.forget_tokens([requester.token_hash, *revoked])
        await self.devices_deleted(requester.user_id, [d.device_id for d in devices])

    # -- registration ------------------------------------------------------------------------
    def check_registration_open(self) -> None:
        if not self.registration_enabled:
            raise Forbidden("Registration is disabled")

    def user_id_for_username(self, username: str) -> str:
        """The user ID a requested username gives (lower-cased), or M_INVALID_USERNAME."""
        localpart = username.lower()
        if not is_new_localpart(localpart):
            raise InvalidInput("User names may only contain a-z, 0-9, '.', '_', '=', '-', '/'"
                               " and '+'", errcode="M_INVALID_USERNAME")
        if is_reserved_localpart(localpart):
            raise InvalidInput(f"User names starting {RESERVED_PREFIX!r} are reserved for"
                               " organisations' accounts", errcode="M_EXCLUSIVE")
        user_id = f"@{localpart}:{self.server_name}"
        if len(user_id) > MAX_USER_ID_LENGTH:
            raise InvalidInput(f"User IDs may be at most {MAX_USER_ID_LENGTH} characters",
                               errcode="M_INVALID_USERNAME")
        return user_id

    async def ensure_available(self, user_id: str) -> None:
        """M_USER_IN_USE if the account exists (deactivated accounts keep their name)."""
        if await self.users.get_user(user_id) is not None:
            raise InvalidInput("User ID already taken", errcode="M_USER_IN_USE")

    async def register(self, user_id: str | None, password: str, ip: str) -> str:
        """Create the account (a generated name when ``user_id`` is None); the ID created.
        Creations count against the address's registration limit."""
        self.limiter.check("registration", f"ip:{ip}")
        password_hash = await self.auth.passwords.hash(password)
        for _ in range(10):
            candidate = user_id or f"@u{secrets.token_hex(6)}:{self.server_name}"
            try:
                now = self.clock.time_ms()
                await self.users.create_user(candidate, password_hash, now,
                                             expires_ts=self.new_expiry(now))
                return candidate
            except IntegrityError:
                if user_id is not None:
                    raise InvalidInput("User ID already taken", errcode="M_USER_IN_USE"
                                       ) from None
        raise Unavailable("Could not generate a free user name")

    # -- the account -------------------------------------------------------------------------
    async def change_password(self, requester: Requester, new_password: str,
                              logout_devices: bool) -> None:
        await self.set_password(requester.user_id, new_password, logout_devices,
                                requester.device_id)

    async def set_password(self, user_id: str, new_password: str, logout_devices: bool,
                           keep_device_id: str | None,
                           write: Callable[[str], Awaitable[list[str]]] | None = None) -> None:
        """Hash and set a new password, deleting every device but ``keep_device_id`` if
        asked; ``write`` stores the hash with what goes with it (default: the password
        alone) and returns the revoked token hashes."""
        password_hash = await self.auth.passwords.hash(new_password)
        devices = await self.users.get_devices(user_id) if logout_devices else []
        if write is None:
            revoked = await self.users.change_password(
                user_id, password_hash, keep_device_id=keep_device_id,
                logout_other_devices=logout_devices)
        else:
            revoked = await write(password_hash)
        self.auth.forget_tokens(revoked)
        await self.devices_deleted(user_id, [
            d.device_id for d in devices if d.device_id != keep_device_id])

    async def deactivate(self, requester: Requester, erase: bool) -> None:
        await self.end_account(requester.user_id,
                               lambda: self.users.deactivate(requester.user_id, erase=erase),
                               [requester.token_hash])

    async def end_account(self, user_id: str, deactivate: Callable[[], Awaitable[list[str]]],
                          tokens: Iterable[str] = ()) -> None:
        """End an account: ``deactivate`` writes it (returning the revoked token hashes, an
        admin's deactivation writes its audit entry with it); every session ends at once, the
        devices' keys go and the user leaves every room."""
        devices = await self.users.get_devices(user_id)
        revoked = await deactivate()
        self.auth.forget_tokens([*tokens, *revoked])
        await self.devices_deleted(user_id, [d.device_id for d in devices])
        await self.leave_all_rooms(user_id)


class Devices:
    """The devices of an account: listed with their last use, renamed, deleted."""

    def __init__(self, users: UserStore, auth: Auth, devices_deleted: DevicesDeleted) -> None:
        self.users = users
        self.auth = auth
        self.devices_deleted = devices_deleted

    async def all(self, user_id: str) -> list[Device]:
        await self.auth.flush_last_seen()
        return await self.users.get_devices(user_id)

    async def get(self, user_id: str, device_id: str) -> Device:
        await self.auth.flush_last_seen()
        device = await self.users.get_device(user_id, device_id)
        if device is None:
            raise NotFound("No such device")
        return device

    async def rename(self, user_id: str, device_id: str, name: str | None) -> None:
        """Set the display name (``None``: change nothing, but the device must exist)."""
        if name is None:
            if await self.users.get_device(user_id, device_id) is None:
                raise NotFound("No such device")
        elif not await self.users.rename_device(user_id, device_id, name):
            raise NotFound("No such device")

    async def delete(self, user_id: str, device_ids: list[str]) -> None:
        """Deleting a device that does not exist succeeds (nothing to do)."""
        revoked = await self.users.delete_devices(user_id, device_ids)
        self.auth.forget_tokens(revoked)
        await self.devices_deleted(user_id, device_ids)
