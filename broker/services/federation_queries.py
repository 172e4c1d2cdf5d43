"""What other servers ask about local things: room aliases, profiles, what this node attests of
its users, users' device keys, and server keys (ours, and as a notary those of other
servers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from twisted.internet import defer

from broker.access_policy import AccessPolicy
from broker.admin.classes import UserClasses
from broker.attestations import user_status
from broker.errors import InvalidInput, MissingInput, NotFound
from broker.remote_classes import RemoteClasses
from broker.rooms.live_room import RoomRegistry
from protocol.discovery import is_valid_server_name
from protocol.identifiers import is_user_id
from protocol.server_keys import add_notary_signature, build_server_keys_response
from protocol.signing import server_name_of
from storage.aliases import AliasStore
from storage.device_keys import DeviceKeyStore

#: How long our published keys are valid (Synapse's default key_refresh_interval: 1 day).
KEY_VALIDITY_MS = 24 * 3600 * 1000

PROFILE_FIELDS = ("displayname", "avatar_url")
NAMESPACE = "in.gov.broker."  # the node's own profile fields (MSC4133's custom keys)


def _is_mine(server_name: str, matrix_id: str) -> bool:
    return matrix_id.split(":", 1)[-1] == server_name


#: The profile query's parameter naming the user who reads (one of the asking server's own).
REQUESTER = "in.gov.broker.requester"

# A local user's profile as another server's user sees it: (user ID, the reader, "" for
# nobody named) -> the profile, None for an unknown user (the profiles service: it hides what
# the owner's organisation hides from the reader's audience).
ProfileForServer = Callable[[str, str], Awaitable["dict[str, Any] | None"]]


class FederationQueries:
    def __init__(self, server_name: str, aliases: AliasStore, profile: ProfileForServer,
                 registry: RoomRegistry, access: AccessPolicy, classes: UserClasses,
                 remote: RemoteClasses) -> None:
        self.server_name = server_name
        self.aliases = aliases
        self.profile_for = profile
        self.classes = classes  # who is verified now (memory)
        self.remote = remote  # what other nodes attest of their users (memory, or asked)
        self.registry = registry
        self.access = access  # the policy decision point

    async def directory(self, alias: str | None) -> dict[str, Any]:
        """The room of a local alias and servers that can join others to it (us first)."""
        if not alias:
            raise MissingInput("Missing 'room_alias'")
        found = await self.aliases.get_alias(alias)
        if found is None:
            raise NotFound(f"Room alias {alias} not found")
        room_id = found[0]
        room = await self.registry.get(room_id)
        servers = {self.server_name}
        if room is not None:
            servers |= {server_name_of(u) for u in room.members_with("join")}
        return {"room_id": room_id,
                "servers": [self.server_name, *sorted(servers - {self.server_name})]}

    async def profile(self, origin: str, user_id: str | None, field: str | None,
                      requester: str | None = None) -> dict[str, Any]:
        """A local user's profile, or one field of it, for a server, as the reader it names
        (``requester``) may see it: a user of ``origin`` whom their node attests verified sees
        what ``verified_other_nodes`` sees; anyone else, or nobody named, or a reader of
        another server than ``origin`` (passed over and counted), what the public sees.  A
        hidden field is absent, as an unset one is."""
        if not user_id:
            raise MissingInput("Missing 'user_id'")
        if not _is_mine(self.server_name, user_id):
            raise InvalidInput("That user does not belong to this server")
        reader = await self.remote.reader(origin, requester or "")
        self.access.may_read_profile(reader, user_id, origin=origin)
        found = await self.profile_for(user_id, reader)
        if found is None:
            raise NotFound("Profile not found")
        if field is not None:
            if field not in PROFILE_FIELDS and not field.startswith(NAMESPACE):
                raise InvalidInput(f"Unknown profile field {field!r}")
            return {field: found[field]} if field in found else {}
        return found

    async def user_status(self, user_id: str | None) -> dict[str, Any]:
        """What this node attests of one of its users (``in.gov.broker.user_status``): their
        class, and the organisation and time of a verification.  NotFound for a user of
        another server (a node speaks for its own users only) and for no such user here."""
        if not user_id:
            raise MissingInput("Missing 'user_id'")
        if not is_user_id(user_id):
            raise InvalidInput(f"Not a user ID: {user_id!r}")
        if not _is_mine(self.server_name, user_id):
            raise NotFound(f"{user_id} is not a user of this server")
        if await self.profile_for(user_id, "") is None:
            raise NotFound(f"Unknown user {user_id}")
        return user_status(self.classes, user_id)


# The device keys of local users as other servers see them: (query) -> keys query answer.
QueryLocalKeys = Callable[[Mapping[str, list[str]]], Awaitable[dict[str, Any]]]
ClaimLocalKeys = Callable[[Mapping[str, dict[str, str]]], Awaitable[dict[str, Any]]]


class FederationUserKeys:
    """Device keys of local users for other servers (display names are not shown)."""

    def __init__(self, server_name: str, device_keys: DeviceKeyStore, query: QueryLocalKeys,
                 claim: ClaimLocalKeys) -> None:
        self.server_name = server_name
        self.device_keys = device_keys
        self.query = query
        self.claim = claim

    async def devices(self, user_id: str) -> dict[str, Any]:
        """A local user's devices with their keys and the position of their last change."""
        if not _is_mine(self.server_name, user_id):
            raise InvalidInput(f"{user_id} is not a user of this server")
        stream_id = await self.device_keys.get_last_change(user_id)
        keys = await self.query({user_id: []})
        devices = keys["device_keys"].get(user_id, {})
        answer: dict[str, Any] = {
            "user_id": user_id,
            "stream_id": stream_id,
            "devices": [{"device_id": device_id, "keys": devices[device_id]}
                        for device_id in sorted(devices)],
        }
        if user_id in keys.get("master_keys", {}):
            answer["master_key"] = keys["master_keys"][user_id]
        if user_id in keys.get("self_signing_keys", {}):
            answer["self_signing_key"] = keys["self_signing_keys"][user_id]
        return answer


class ServerKeys:
    """Our keys (published valid for ``KEY_VALIDITY_MS``, signed with the current key, retired
    keys under ``old_verify_keys``) and, as a notary, the signed responses of other servers,
    each as received with our signature added."""

    def __init__(self, server_name: str, signing_key: Any,
                 old_keys: list[tuple[Any, str, int]], clock: Any, keyring: Any) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.old_keys = old_keys  # (verify key, key ID, expired at)
        self.clock = clock
        self.keyring = keyring

    def own(self) -> dict[str, Any]:
        return build_server_keys_response(self.server_name, [self.signing_key], self.old_keys,
                                          self.clock.time_ms() + KEY_VALIDITY_MS)

    async def notarise(self, queries: list[tuple[str, dict[str, int | None]]],
                       minimum: int | None = None) -> list[dict[str, Any]]:
        """The key responses for each (server, {key ID: minimum_valid_until_ts}), every key
        of a server when it names none."""
        answers = await defer.gatherResults(
            [defer.ensureDeferred(self.answer(server, criteria, minimum))
             for server, criteria in queries],
            consumeErrors=True,
        )
        return [response for answer in answers for response in answer]

    async def answer(self, server: str, criteria: dict[str, int | None],
                      minimum: int | None) -> list[dict[str, Any]]:
        if not is_valid_server_name(server):
            return []
        if server == self.server_name:
            return [self.own()]
        limits = [m for m in criteria.values() if m is not None]
        if minimum is not None:
            limits.append(minimum)
        required = max(limits) if limits else self.clock.time_ms()
        responses = await self.keyring.get_server_key_responses(server, list(criteria), required)
        return [add_notary_signature(r, self.server_name, self.signing_key) for r in responses]
