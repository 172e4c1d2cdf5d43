"""Wiring of the notice rooms (:mod:`broker.notice_rooms`, :mod:`broker.notice_invites`) into
the node: the narrow parts of the room services they use, the leave refusal, the remote
auto-join, and organisations' accounts attested as verified for their organisation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from broker.admin.classes import VERIFIED, UserClasses
from broker.notice_invites import NoticeInvites
from broker.notice_rooms import NoticeRooms, check_leave
from broker.org_accounts import OrganisationAccounts
from broker.remote_classes import RemoteClasses
from broker.rooms.create_room import NewRooms
from broker.rooms.membership import Membership
from broker.rooms.service import Rooms
from protocol.signing import server_name_of
from storage.database import Database
from storage.notice_rooms import NoticeRoomStore


@dataclass(frozen=True)
class NoticeDeps:
    server_name: str
    db: Database
    rooms: Rooms
    new_rooms: NewRooms
    membership: Membership
    classes: UserClasses
    remote_classes: RemoteClasses
    org_accounts: OrganisationAccounts
    member_profile: Callable[[str, Any], Awaitable[dict[str, Any]]]
    existing: Callable[[list[str]], Awaitable[set[str]]]  # which local users have an account
    clock: Any


def build_notice_rooms(deps: NoticeDeps) -> tuple[NoticeRooms, NoticeInvites]:
    membership = deps.membership

    def trusted(creator: str) -> bool:
        """Whether a notice room's creator is believed: an account of ours, or verified by
        its own node."""
        return server_name_of(creator) == deps.server_name or \
            deps.remote_classes.class_of(creator) == VERIFIED

    membership.leave_check = partial(check_leave, trusted=trusted)
    # An organisation's account speaks for it: verified for it, as this node attests.
    deps.org_accounts.listeners.append(
        lambda org_id, user_id, since: deps.classes.serve(user_id, org_id, since))

    async def sender_profile(sender: str) -> dict[str, Any]:
        return await deps.member_profile(sender, None)

    async def join(room_id: str, user_id: str, servers: list[str]) -> Any:
        return await membership.join(room_id, user_id, servers=servers)

    rooms = NoticeRooms(deps.server_name, NoticeRoomStore(deps.db), deps.rooms, deps.new_rooms,
                        membership.remote_invites.invite, sender_profile, deps.existing,
                        deps.clock)
    invites = NoticeInvites(join, deps.remote_classes.class_of, deps.clock)
    return rooms, invites
