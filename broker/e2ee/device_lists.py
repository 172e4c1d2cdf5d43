"""Device-list tracking: who must learn that a user's devices changed, and what /sync reports.

A change of a local user's device list (new or changed identity keys, a deleted device) is a row
of ``device_list_changes`` at a position of the node's stream.  Publishing it wakes the local
users who share a room with the owner (and the owner's other devices) and queues a persistent
``m.device_list_update`` EDU for every other server sharing a room with the owner.  The EDU's
``stream_id`` is the change's stream position and ``prev_id`` the owner's change before it, so a
receiving server notices a gap and refetches.

Inbound ``m.device_list_update`` EDUs of users we share a room with are recorded the same way
(one change row) and update or drop the cached keys (:mod:`storage.device_keys`), waking the
local users sharing a room with that user.

/sync ``device_lists`` (incremental syncs only):

* ``changed``: users sharing a room with the requester whose device list changed since the
  token, and users the requester newly shares a room with;
* ``left``: users the requester shared a room with and no longer does, from the membership
  changes since the token (of the requester, or of others in the requester's rooms).

Both parts ask memory first (the notifier's per-user and per-room positions, each live room's
recent events) and read the database only when something changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet import defer

from broker.e2ee.keys import device_keys_signature_valid, forget_key_counts
from protocol.signing import server_name_of
from storage.device_keys import DeviceListChange, JsonDict

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.e2ee.context import E2ee
    from federation.sender.sender import FederationSender
    from federation.transport_client import FederationClient


@dataclass(frozen=True)
class E2eeFederation:
    """What end-to-end encryption sends to and asks of other servers through (None when
    federation is off)."""

    sender: FederationSender | None
    client: FederationClient | None


logger = logging.getLogger(__name__)

EDU_TYPE = "m.device_list_update"
R = TypeVar("R")


@dataclass(frozen=True)
class DeviceUpdate:
    """A recorded change and the device's keys now (None: the device was deleted)."""

    change: DeviceListChange
    keys: JsonDict | None


async def with_stream_ids(e2ee: E2ee, count: int,
                          write: Callable[[list[int]], Awaitable[R]]) -> R:
    """Run ``write`` with ``count`` fresh stream ids; they are released whatever happens (ids
    ``write`` leaves unused are simply skipped by readers)."""
    assert e2ee.stream is not None
    ids = e2ee.stream.allocate(count)
    try:
        return await write(ids)
    finally:
        e2ee.stream.finish(ids)


# -- who shares rooms with whom ------------------------------------------------------------------
async def shared_members(e2ee: E2ee, user_id: str) -> dict[str, set[str]]:
    """Every user joined to a room ``user_id`` is joined to -> those rooms (from memory)."""
    shared: dict[str, set[str]] = {}
    for room_id in await e2ee.rooms.user_rooms.joined_rooms(user_id):
        room = await e2ee.rooms.registry.get(room_id)
        if room is None or room.membership_of(user_id) != "join":
            continue
        for member in room.members_with("join"):
            shared.setdefault(member, set()).add(room_id)
    return shared


async def local_users_sharing_rooms(e2ee: E2ee, user_id: str) -> set[str]:
    """Local users joined to a room ``user_id`` is joined to."""
    return {m for m in await shared_members(e2ee, user_id) if e2ee.is_mine(m) and m != user_id}


# -- publishing local changes -----------------------------------------------------------------------
async def publish_device_updates(e2ee: E2ee, user_id: str, updates: list[DeviceUpdate]) -> None:
    """Wake the local users concerned and queue ``m.device_list_update`` EDUs for every other
    server sharing a room with ``user_id``."""
    if not updates:
        return
    shared = await shared_members(e2ee, user_id)
    local = {m for m in shared if e2ee.is_mine(m)} | {user_id}
    e2ee.notifier.notify(users=local, position=max(u.change.stream_id for u in updates))
    sender = e2ee.e2ee_federation.sender
    servers = sorted({server_name_of(m) for m in shared} - {e2ee.server_name})
    if sender is None or not servers:
        return
    queued = []
    for update in updates:
        content = device_list_update_content(user_id, update)
        for server in servers:
            queued.append(sender.enqueue_edu(
                server, EDU_TYPE, content, persistent=True,
                key=f"{user_id}/{update.change.device_id}"))
    results = await defer.DeferredList(queued, consumeErrors=True)
    for ok, failure in results:
        if not ok:
            logger.error("queueing a device list update of %s failed: %s", user_id,
                         failure.getErrorMessage())  # type: ignore[attr-defined]


def device_list_update_content(user_id: str, update: DeviceUpdate) -> dict[str, Any]:
    change = update.change
    content: dict[str, Any] = {
        "user_id": user_id,
        "device_id": change.device_id,
        "stream_id": change.stream_id,
        "prev_id": [change.prev_stream_id] if change.prev_stream_id is not None else [],
    }
    if update.keys is None:
        content["deleted"] = True
    else:
        content["keys"] = {k: v for k, v in update.keys.items() if k != "unsigned"}
    return content


async def on_devices_deleted(e2ee: E2ee, user_id: str, device_ids: Iterable[str]) -> None:
    """Devices of a local user were deleted (or logged out): remove their keys and publish the
    change for each one that had identity keys.  Call after the devices are gone."""
    device_ids = list(dict.fromkeys(device_ids))
    if not device_ids:
        return
    store = e2ee.stores.device_keys

    async def write(ids: list[int]) -> list[DeviceListChange]:
        return await store.delete_devices_keys(user_id, device_ids, ids)

    changes = await with_stream_ids(e2ee, len(device_ids), write)
    forget_key_counts(e2ee, [(user_id, device_id) for device_id in device_ids])
    await publish_device_updates(e2ee, user_id, [DeviceUpdate(c, None) for c in changes])


# -- inbound updates -------------------------------------------------------------------------------
async def on_device_list_update_edu(e2ee: E2ee, origin: str, content: dict[str, Any]) -> None:
    """An ``m.device_list_update`` EDU from ``origin``: record the change for a user of that
    server we share a room with, update or drop our cache of their keys, wake local users."""
    user_id, device_id = content.get("user_id"), content.get("device_id")
    stream_id, prev_ids = content.get("stream_id"), content.get("prev_id", [])
    deleted, keys = content.get("deleted", False), content.get("keys")
    if not isinstance(user_id, str) or not isinstance(device_id, str) or not device_id:
        return
    if server_name_of(user_id) != origin:
        logger.info("device list update for %s from %s refused", user_id, origin)
        return
    if isinstance(stream_id, bool) or not isinstance(stream_id, int) \
            or not isinstance(prev_ids, list) \
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in prev_ids) \
            or not isinstance(deleted, bool):
        return
    local = await local_users_sharing_rooms(e2ee, user_id)
    if not local:
        return
    if keys is not None and not device_keys_signature_valid(keys, user_id, device_id):
        keys = None  # not usable: the cache is dropped and the next query asks the server
    store = e2ee.stores.device_keys

    async def write(ids: list[int]) -> int | None:
        applied = await store.apply_remote_update(
            user_id, device_id, remote_stream_id=stream_id, prev_ids=prev_ids,
            deleted=deleted, keys=keys, stream_id=ids[0])
        return ids[0] if applied else None

    position = await with_stream_ids(e2ee, 1, write)
    if position is not None:
        e2ee.notifier.notify(users=local, position=position)


# -- what changed since a token ---------------------------------------------------------------------
async def device_list_changes(e2ee: E2ee, user_id: str, since: int, now: int
                              ) -> tuple[set[str], set[str]]:
    """(changed, left) for ``user_id`` between two stream positions."""
    changed: set[str] = set()
    left: set[str] = set()
    shared: dict[str, set[str]] | None = None
    if e2ee.notifier.user_changed_since(user_id, since):
        updated = await e2ee.stores.device_keys.get_changed_users(since, now)
        if updated:
            shared = await shared_members(e2ee, user_id)
            changed.update(u for u in updated if u == user_id or u in shared)
    member_changes = await _membership_changes(e2ee, user_id, since, now)
    if not member_changes:
        return changed, left
    if shared is None:
        shared = await shared_members(e2ee, user_id)
    my_rooms = {room_id for room_id, target in member_changes if target == user_id}
    rooms_of: dict[str, set[str]] = {}
    candidates: set[str] = set()
    for room_id, target in member_changes:
        rooms_of.setdefault(target, set()).add(room_id)
        if target == user_id:
            room = e2ee.rooms.registry.cached(room_id)
            if room is not None:
                candidates.update(room.members_with("join"))
        else:
            candidates.add(target)
    candidates.discard(user_id)
    newly_shared: set[str] = set()
    for candidate in candidates:
        rooms_now = shared.get(candidate, set())
        if rooms_now:
            # Shared before too if they still share a room where neither's membership moved.
            if not rooms_now - my_rooms - rooms_of.get(candidate, set()):
                newly_shared.add(candidate)
        elif _was_shared(e2ee, user_id, candidate, my_rooms, rooms_of.get(candidate, set())):
            left.add(candidate)
    changed.update(newly_shared)
    remote = [u for u in newly_shared if not e2ee.is_mine(u)]
    if remote:
        # We may not have heard of their changes while no local user shared a room with them.
        await e2ee.stores.device_keys.forget_remote_cache(remote)
    return changed, left - changed


def _was_shared(e2ee: E2ee, user_id: str, candidate: str, my_rooms: set[str],
                their_rooms: set[str]) -> bool:
    """Whether a membership change in one of the rooms may have ended sharing it: the candidate
    left it (or was banned), or the requester left it while the candidate stayed."""
    for room_id in their_rooms:
        room = e2ee.rooms.registry.cached(room_id)
        if room is None or room.membership_of(candidate) not in ("leave", "ban"):
            continue
        mine = room.membership_of(user_id)
        # Still joined (and not newly): we shared it until they left.  Both moved: maybe.
        if (mine == "join") != (room_id in my_rooms):
            return True
    for room_id in my_rooms:
        room = e2ee.rooms.registry.cached(room_id)
        if room is not None and room.membership_of(user_id) in ("leave", "ban") \
                and room.membership_of(candidate) == "join":
            return True
    return False


async def _membership_changes(e2ee: E2ee, user_id: str, since: int, now: int
                              ) -> list[tuple[str, str]]:
    """(room_id, user_id) of membership events since ``since`` in the requester's rooms, from
    each room's recent events when they cover the range."""
    rooms = await e2ee.rooms.user_rooms.rooms_for_user(user_id)
    found: list[tuple[str, str]] = []
    from_db: list[str] = []
    for room_id in list(rooms):
        if not e2ee.notifier.room_changed_since(room_id, since):
            continue
        room = await e2ee.rooms.registry.get(room_id)
        if room is None or room.last_stream <= since:
            continue
        recent = room.recent_since(since, now)
        if recent is None:
            from_db.append(room_id)
            continue
        found.extend((room_id, e.state_key) for e in recent
                     if e.type == "m.room.member" and e.state_key is not None)
    if from_db:
        found.extend(await e2ee.stores.device_keys.get_membership_changes(from_db, since, now))
    return found


def sync_share_key(e2ee: E2ee, requester: Requester, since: int, now: int,
                   member_events: bool) -> Hashable | None:
    """Nothing to report, known from memory: no change of the requester's own (their keys
    or memberships) and no membership event in the rooms that changed."""
    if member_events or e2ee.notifier.user_changed_since(requester.user_id, since):
        return None
    return ()


async def sync_fields(e2ee: E2ee, requester: Requester, since: int | None,
                      now: int) -> dict[str, Any]:
    if since is None:
        return {}
    changed, left = await device_list_changes(e2ee, requester.user_id, since, now)
    if not changed and not left:
        return {}
    return {"device_lists": {"changed": sorted(changed), "left": sorted(left)}}
