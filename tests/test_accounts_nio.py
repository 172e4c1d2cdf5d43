"""An account's life through matrix-nio, the SDK a real client would use."""

from __future__ import annotations

import asyncio
import uuid

import nio

from tests.node_harness import NodeProcess

PASSWORD = "correct horse 1"


async def journey(node: NodeProcess) -> None:
    username = "n" + uuid.uuid4().hex[:10]
    first = nio.AsyncClient(node.base_url, username)
    second = nio.AsyncClient(node.base_url, username)
    try:
        registered = await first.register(username, PASSWORD, "first device")
        assert isinstance(registered, nio.RegisterResponse), registered
        logged_in = await second.login(PASSWORD, device_name="second device")
        assert isinstance(logged_in, nio.LoginResponse), logged_in

        devices = await first.devices()
        assert isinstance(devices, nio.DevicesResponse), devices
        assert {d.id for d in devices.devices} == {first.device_id, second.device_id}

        assert isinstance(await first.set_displayname("Nio User"),
                          nio.ProfileSetDisplayNameResponse)
        profile = await second.get_profile(first.user_id)
        assert isinstance(profile, nio.ProfileGetResponse) and profile.displayname == "Nio User"

        challenge = await first.delete_devices([second.device_id])
        assert isinstance(challenge, nio.DeleteDevicesAuthResponse), challenge
        auth = {"type": "m.login.password", "session": challenge.session, "password": PASSWORD,
                "identifier": {"type": "m.id.user", "user": first.user_id}}
        deleted = await first.delete_devices([second.device_id], auth)
        assert isinstance(deleted, nio.DeleteDevicesResponse), deleted
        assert isinstance(await second.whoami(), nio.WhoamiError)

        assert isinstance(await first.logout(), nio.LogoutResponse)
    finally:
        await first.close()
        await second.close()


def test_register_login_rename_and_delete_devices_with_nio(node: NodeProcess) -> None:
    asyncio.run(journey(node))
