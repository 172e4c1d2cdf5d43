"""A broadcaster reaches a unit and reads the statistics, on a running node of each engine,
with the members' apps built on a real client library (matrix-nio): the members of the unit
find the broadcast in a room joined for them without accepting anything, one of them reads
it (an ``m.read`` receipt), and ``GET /broadcasts/{id}`` counts who received and who read it;
a member outside the unit gets nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import quote

import nio

from broker.notice_rooms import NOTICE
from tests.nio_helpers import expect, sync_until
from tests.node_harness import Client, NodeProcess

ADMIN = "/_broker/admin/v1"
PASSWORD = "correct horse 1"


def _organisation(admin: Client, members: dict[str, str], broadcaster: str) -> str:
    """An organisation with a unit ``<org>.unit``; ``members`` user ID -> the org they are
    placed in ("unit" or "hq"); ``broadcaster`` holds the role over the organisation."""
    org_id = "o" + uuid.uuid4().hex[:8]
    for body in ({"id": org_id, "name": "Home Affairs"},
                 {"id": f"{org_id}.unit", "name": "Disaster Management", "parent": org_id}):
        admin.post(f"{ADMIN}/organisations", body)
        assert admin.status == 201
    for user_id, place in members.items():
        admin.request("PATCH", f"{ADMIN}/users/{quote(user_id)}",
                      {"organisation": org_id if place == "hq" else f"{org_id}.unit"})
        assert admin.status == 200
    admin.put(f"{ADMIN}/users/{quote(broadcaster)}/roles",
              {"roles": [{"role": "broadcaster", "organisation": org_id}]})
    assert admin.status == 200
    return org_id


def _broadcast_in(broadcast_id: str) -> Any:
    def found(response: nio.SyncResponse) -> Any:
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                marker = event.source.get("content", {}).get(NOTICE)
                if marker == {"kind": "broadcast", "id": broadcast_id}:
                    return room_id, event
        return None
    return found


async def _member_reads(node: NodeProcess, localpart: str, broadcast_id: str,
                        read: bool) -> None:
    client = nio.AsyncClient(node.base_url, localpart)
    try:
        expect(await client.login(PASSWORD), nio.LoginResponse)
        room_id, event = await sync_until(client, _broadcast_in(broadcast_id))
        assert isinstance(event, nio.RoomMessageText) and event.body == "Cyclone warning"
        await client.sync(timeout=0)  # a sync with a later token: the message was received
        if read:
            expect(await client.room_read_markers(room_id, event.event_id, event.event_id),
                   nio.RoomReadMarkersResponse)
        sent = await client.room_send(room_id, "m.room.message",
                                      {"msgtype": "m.text", "body": "reply"})
        assert isinstance(sent, nio.RoomSendError), sent  # read-only
    finally:
        await client.close()


def _until(admin: Client, broadcast_id: str, wanted: dict[str, Any]) -> dict[str, Any]:
    """The statistics, asked until they show ``wanted`` (the sync progress is memory, the
    receipt a write: both reach the answer within a request or two)."""
    deadline = time.monotonic() + 15
    while True:
        shown = admin.get(f"{ADMIN}/broadcasts/{broadcast_id}")
        assert admin.status == 200, shown
        if all(shown[k] == v for k, v in wanted.items()) or time.monotonic() > deadline:
            return dict(shown)
        time.sleep(0.1)


def test_a_broadcaster_reaches_a_unit_and_reads_the_statistics(any_node: NodeProcess) -> None:
    admin = any_node.admin()
    names = {role: "b" + uuid.uuid4().hex[:10] for role in ("ana", "ben", "hq", "bea")}
    users = {role: any_node.register(name, PASSWORD) for role, name in names.items()}
    org_id = _organisation(admin, {users["ana"].user_id: "unit", users["ben"].user_id: "unit",
                                   users["hq"].user_id: "hq"}, users["bea"].user_id)
    bea = users["bea"]
    answer = bea.post(f"{ADMIN}/broadcasts", {"organisation": org_id, "body": "Cyclone warning",
                                              "audience": {"organisations": [f"{org_id}.unit"]}})
    assert bea.status == 201, answer
    broadcast_id = answer["broadcast_id"]

    async def members() -> None:
        await asyncio.gather(_member_reads(any_node, names["ana"], broadcast_id, read=True),
                             _member_reads(any_node, names["ben"], broadcast_id, read=False))

    asyncio.run(members())
    shown = _until(bea, broadcast_id, {"delivered": 2, "read": 1})
    assert (shown["recipients"], shown["delivered"], shown["read"]) == (2, 2, 1), shown
    assert shown["unread"] == [users["ben"].user_id]
    assert shown["progress"]["state"] == "done"
    hq_sync = users["hq"].get("/_matrix/client/v3/sync", params={"timeout": "0"})
    assert not any(NOTICE in e.get("content", {}) for room in hq_sync["rooms"]["join"].values()
                   for e in room["timeline"]["events"])
