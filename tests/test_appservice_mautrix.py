"""A bridge built on a real application service framework (mautrix's ``AppService``) against a
running node: it receives the node's transactions, registers a bridged user and acts as it
(masquerading), and bridges a room: a user of ours talks with the bridged user and each sees
the other's messages.  Asked by the node about unknown users and aliases of its namespaces, it
creates them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from mautrix.appservice import AppService
from mautrix.appservice.state_store.memory import ASStateStore
from mautrix.client.state_store.memory import MemoryStateStore
from mautrix.types import (
    Event,
    EventType,
    Membership,
    MessageEvent,
    RoomCreatePreset,
    StateEvent,
)

from tests.appservice_helpers import registration_file
from tests.node_harness import Client, NodeProcess, free_port

SERVER = "mautrix.test"


class MemoryASStore(MemoryStateStore, ASStateStore):  # the framework's parts, in memory
    def __init__(self) -> None:
        MemoryStateStore.__init__(self)
        ASStateStore.__init__(self)


@pytest.fixture(scope="module")
def bridge_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def node(tmp_path_factory: Any, bridge_port: int) -> Iterator[NodeProcess]:
    folder: Path = tmp_path_factory.mktemp("mautrix")
    registration = registration_file(folder, "mautrix", url=f"http://127.0.0.1:{bridge_port}",
                                     prefix="tg", server_name=SERVER, receive_ephemeral=True)
    running = NodeProcess(folder, server_name=SERVER,
                          overrides={"app_services": [str(registration)]}).start()
    try:
        yield running
    finally:
        running.stop()


class Bridge:
    """The application: a ghost ``@tg_<name>`` per remote contact, who accepts invites and
    answers each message of a room with ``echo: <body>``, as a remote contact would."""

    def __init__(self, node: NodeProcess, port: int) -> None:
        self.port = port
        self.service = AppService(
            server=node.base_url, domain=SERVER, as_token="mautrix-as", hs_token="mautrix-hs",
            bot_localpart="tgbot", id="mautrix", state_store=MemoryASStore(),
            ephemeral_events=True, query_user=self.query_user, query_alias=self.query_alias)
        self.seen: list[Event] = []
        self.changed = asyncio.Condition()
        self.service.matrix_event_handler(self.handle)

    async def query_user(self, user_id: str) -> dict[str, Any] | None:
        """A remote contact looked up: its ghost is made, with the contact's name."""
        ghost = self.service.intent.user(user_id)
        await ghost.ensure_registered()
        await ghost.set_displayname("Looked Up")
        return {"user_id": user_id}  # the framework answers 404 for an empty one

    async def query_alias(self, alias: str) -> dict[str, Any] | None:
        """A remote group asked for: the bridge makes its room under that alias."""
        await self.service.intent.create_room(alias_localpart=alias[1:].split(":")[0],
                                              preset=RoomCreatePreset.PUBLIC)
        return {"alias": alias}

    async def handle(self, event: Event) -> None:
        async with self.changed:
            self.seen.append(event)
            self.changed.notify_all()
        if isinstance(event, StateEvent) and event.type == EventType.ROOM_MEMBER \
                and event.content.membership == Membership.INVITE \
                and event.state_key.startswith("@tg_"):
            await self.service.intent.user(event.state_key).join_room(event.room_id)
        elif isinstance(event, MessageEvent) and not event.sender.startswith("@tg_"):
            ghost = next(u for u in await self.service.state_store.get_members(event.room_id)
                         if u.startswith("@tg_"))
            await self.service.intent.user(ghost).send_text(
                event.room_id, f"echo: {event.content.body}")

    async def wait_for(self, check: Any, timeout: float = 20) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: any(map(check, self.seen))),
                                   timeout)


def sync_bodies(client: Client, room_id: str, since: str | None) -> tuple[list[Any], str]:
    params = {"timeout": "20000", **({"since": since} if since else {})}
    body = client.get("/_matrix/client/v3/sync", params=params)
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [e for e in room.get("timeline", {}).get("events", [])
            if e["type"] == "m.room.message"], body["next_batch"]


async def bridged_conversation(node: NodeProcess, port: int) -> None:
    bridge = Bridge(node, port)
    await bridge.service.start(host="127.0.0.1", port=port)
    try:
        ghost = f"@tg_{uuid.uuid4().hex[:8]}:{SERVER}"
        intent = bridge.service.intent.user(ghost)
        await intent.ensure_registered()  # m.login.application_service
        await intent.set_displayname("Remote Contact")  # masquerading
        alice = await asyncio.to_thread(node.register)
        room = await asyncio.to_thread(alice.post, "/_matrix/client/v3/createRoom",
                                       {"invite": [ghost], "is_direct": True})
        room_id = room["room_id"]
        await bridge.wait_for(lambda e: isinstance(e, StateEvent) and e.room_id == room_id
                              and e.state_key == ghost and e.content.membership == Membership.JOIN)
        await asyncio.to_thread(
            alice.put, f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/m1",
            {"msgtype": "m.text", "body": "hello from the ministry"})
        await bridge.wait_for(lambda e: isinstance(e, MessageEvent)
                              and e.content.body == "hello from the ministry")
        since = None
        seen: list[Any] = []
        while not any(e["content"]["body"].startswith("echo:") for e in seen):
            events, since = await asyncio.to_thread(sync_bodies, alice, room_id, since)
            seen += events
        echo = next(e for e in seen if e["content"]["body"].startswith("echo:"))
        assert echo["sender"] == ghost
        assert echo["content"]["body"] == "echo: hello from the ministry"
        members = await asyncio.to_thread(
            alice.get, f"/_matrix/client/v3/rooms/{room_id}/joined_members")
        assert members["joined"][ghost]["display_name"] == "Remote Contact"
    finally:
        await bridge.service.stop()


def test_a_mautrix_bridge_bridges_a_room(node: NodeProcess, bridge_port: int) -> None:
    asyncio.run(asyncio.wait_for(bridged_conversation(node, bridge_port), 90))


async def lookups(node: NodeProcess, port: int) -> None:
    bridge = Bridge(node, port)
    await bridge.service.start(host="127.0.0.1", port=port)
    try:
        alice = await asyncio.to_thread(node.register)
        contact = f"@tg_{uuid.uuid4().hex[:8]}:{SERVER}"
        profile = await asyncio.to_thread(alice.get, f"/_matrix/client/v3/profile/{contact}")
        assert alice.status == 200 and profile["displayname"] == "Looked Up"
        group = f"#tg_{uuid.uuid4().hex[:8]}:{SERVER}"
        joined = await asyncio.to_thread(alice.post,
                                         f"/_matrix/client/v3/join/{quote(group)}", {})
        assert alice.status == 200 and joined["room_id"].startswith("!")
        invitee = f"@tg_{uuid.uuid4().hex[:8]}:{SERVER}"
        room = await asyncio.to_thread(alice.post, "/_matrix/client/v3/createRoom",
                                       {"invite": [invitee]})
        assert alice.status == 200
        await bridge.wait_for(lambda e: isinstance(e, StateEvent) and e.state_key == invitee
                              and e.room_id == room["room_id"])
    finally:
        await bridge.service.stop()


def test_unknown_users_and_aliases_of_its_namespaces_are_asked_of_the_bridge(
        node: NodeProcess, bridge_port: int) -> None:
    asyncio.run(asyncio.wait_for(lookups(node, bridge_port), 90))


def test_nobody_else_may_take_an_alias_of_an_exclusive_namespace(node: NodeProcess) -> None:
    alice = node.register()
    room = alice.post("/_matrix/client/v3/createRoom", {})["room_id"]
    body = alice.put(f"/_matrix/client/v3/directory/room/%23tg_mine:{SERVER}",
                     {"room_id": room})
    assert (alice.status, body["errcode"]) == (400, "M_EXCLUSIVE")


def test_an_unknown_user_outside_any_namespace_is_still_unknown(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get(f"/_matrix/client/v3/profile/@nobody_{uuid.uuid4().hex[:6]}:{SERVER}")
    assert (alice.status, body["errcode"]) == (404, "M_NOT_FOUND")
