"""matrix-nio against a real node: to-device messages sent with ``AsyncClient.to_device`` reach
the other device's long-poll once; key backup (not in nio) over raw requests with nio's token."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import nio

from tests.nio_helpers import expect, initial_sync, parked_sync, users
from tests.node_harness import Client, NodeProcess

EVENT_TYPE = "in.gov.broker.test.ping"
BACKUP = "/_matrix/client/v3/room_keys"
ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"


def _to_device_of(response: nio.SyncResponse) -> list[nio.UnknownToDeviceEvent]:
    return [e for e in response.to_device_events if isinstance(e, nio.UnknownToDeviceEvent)]


def test_to_device_message_wakes_the_recipient_once(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 2) as (alice, bob):
            await initial_sync(bob)
            parked = await parked_sync(bob)
            message = nio.ToDeviceMessage(EVENT_TYPE, bob.user_id, bob.device_id, {"n": 1})
            expect(await alice.to_device(message, tx_id="nio-1"), nio.ToDeviceResponse)
            events = _to_device_of(expect(await asyncio.wait_for(parked, 10),
                                          nio.SyncResponse))
            assert [(e.source["sender"], e.type, e.source["content"]) for e in events] == [
                (alice.user_id, EVENT_TYPE, {"n": 1})]
            # The same transaction again, and a sync acknowledging the first delivery.
            expect(await alice.to_device(message, tx_id="nio-1"), nio.ToDeviceResponse)
            again = expect(await bob.sync(timeout=500), nio.SyncResponse)
            assert _to_device_of(again) == []
    asyncio.run(run())


def test_key_backup_round_trip_with_a_nio_session(node: NodeProcess) -> None:
    async def run() -> None:
        async with users(node, 1) as (alice,):
            raw = Client(node.base_url, alice.access_token)
            created = raw.post(f"{BACKUP}/version", {
                "algorithm": ALGORITHM, "auth_data": {"public_key": "cHVibGlj"}})
            version = created["version"]
            key = {"first_message_index": 0, "forwarded_count": 0, "is_verified": True,
                   "session_data": {"ephemeral": "e", "ciphertext": "c", "mac": "m"}}
            path = f"{BACKUP}/keys/{quote('!room:example.org')}/session1"
            assert raw.put(path, key, params={"version": version}) == {"etag": "1", "count": 1}
            assert raw.get(path, params={"version": version}) == key
            current = raw.get(f"{BACKUP}/version")
            assert (current["version"], current["count"]) == (version, 1)
    asyncio.run(run())
