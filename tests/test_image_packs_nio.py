"""An organisation's image pack as a real client library (matrix-nio) sees it, on a running
node of each engine: the admin uploads an image through the media API and publishes a pack;
the member's app, set up for nothing, finds the pack room joined with the ``m.image_pack``
(and ``im.ponies.room_emotes``) state and the room in its image pack account data."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

import nio

from tests.nio_helpers import expect, sync_until
from tests.node_harness import NodeProcess

ADMIN = "/_broker/admin/v1"
PASSWORD = "correct horse 1"


def _publish(node: NodeProcess, member: str) -> str:
    """An organisation with ``member`` in it and a pack of one uploaded image; its ID."""
    admin = node.admin()
    org_id = "o" + uuid.uuid4().hex[:8]
    admin.post(f"{ADMIN}/organisations", {"id": org_id, "name": "Home Affairs"})
    assert admin.status == 201
    admin.request("PATCH", f"{ADMIN}/users/{quote(member)}", {"organisation": org_id})
    assert admin.status == 200
    uploaded = admin.post("/_matrix/media/v3/upload", raw=b"\x89PNG\r\n\x1a\n" + b"\0" * 32,
                          headers={"Content-Type": "image/png"})
    assert admin.status == 200, uploaded
    pack = admin.put(f"{ADMIN}/organisations/{org_id}/image_packs/official",
                     {"images": {"namaste": {"url": uploaded["content_uri"]}},
                      "pack": {"display_name": "Home Affairs"}})
    assert admin.status == 201, pack
    return str(pack["room_id"])


def _pack_room_joined(room_id: str) -> Any:
    def found(response: nio.SyncResponse) -> Any:
        room = response.rooms.join.get(room_id)
        return room is not None
    return found


async def _member_sees(node: NodeProcess, localpart: str, room_id: str) -> None:
    client = nio.AsyncClient(node.base_url, localpart)
    try:
        expect(await client.login(PASSWORD), nio.LoginResponse)
        await sync_until(client, _pack_room_joined(room_id))
        state = expect(await client.room_get_state(room_id), nio.RoomGetStateResponse)
        packs = {(e["type"], e["state_key"]): e["content"] for e in state.events
                 if e["type"] in ("m.image_pack", "im.ponies.room_emotes")}
        assert set(packs) == {("m.image_pack", "official"),
                              ("im.ponies.room_emotes", "official")}
        image = packs[("m.image_pack", "official")]["images"]["namaste"]
        assert image["info"]["mimetype"] == "image/png"
        downloaded = await client.download(image["url"])
        assert isinstance(downloaded, nio.DownloadResponse), downloaded
        client.next_batch = None  # an initial sync: every account data event
        first = expect(await client.sync(timeout=0, full_state=True), nio.SyncResponse)
        data = {e.type: e.content for e in first.account_data_events
                if isinstance(e, nio.UnknownAccountDataEvent)}
        for data_type in ("m.image_pack.rooms", "im.ponies.emote_rooms"):
            assert data[data_type] == {"rooms": {room_id: {"official": {}}}}
    finally:
        await client.close()


def test_a_member_s_app_finds_the_organisation_s_pack_with_nio(any_node: NodeProcess) -> None:
    localpart = "g" + uuid.uuid4().hex[:10]
    member = any_node.register(localpart, PASSWORD)
    room_id = _publish(any_node, member.user_id)
    asyncio.run(_member_sees(any_node, localpart, room_id))
