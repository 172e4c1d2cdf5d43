"""``/devices`` and ``/delete_devices``: listing, renaming, deleting behind password UIA."""

from __future__ import annotations

import uuid
from typing import Any

from tests.node_harness import Client, NodeProcess

DEVICES = "/_matrix/client/v3/devices"
WHOAMI = "/_matrix/client/v3/account/whoami"
PASSWORD = "correct horse 1"


def fresh_user(node: NodeProcess) -> Client:
    return node.register("d" + uuid.uuid4().hex[:10], PASSWORD)


def second_device(node: NodeProcess, user: Client, device_id: str) -> Client:
    client = node.client()
    body = client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "user": user.user_id, "password": PASSWORD,
        "device_id": device_id, "initial_device_display_name": "Second"})
    client.token = body["access_token"]
    return client


def password_auth(user: Client, session: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"type": "m.login.password", "password": PASSWORD,
                            "identifier": {"type": "m.id.user", "user": user.user_id}}
    return {**auth, "session": session} if session else auth


def test_list_devices(node: NodeProcess) -> None:
    user = fresh_user(node)
    second_device(node, user, "SECOND")
    devices = user.get(DEVICES)["devices"]
    assert sorted(d["device_id"] for d in devices) == sorted([user.device_id, "SECOND"])
    second = next(d for d in devices if d["device_id"] == "SECOND")
    assert second["display_name"] == "Second"
    assert second["last_seen_ip"] == "127.0.0.1"
    assert isinstance(second["last_seen_ts"], int)


def test_get_device(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.get(f"{DEVICES}/{user.device_id}")
    assert user.status == 200
    assert body["device_id"] == user.device_id


def test_get_unknown_device_is_not_found(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.get(f"{DEVICES}/NOSUCHDEVICE")
    assert (user.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_devices_of_other_users_are_not_visible(node: NodeProcess) -> None:
    user = fresh_user(node)
    other = fresh_user(node)
    body = user.get(f"{DEVICES}/{other.device_id}")
    assert (user.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_rename_device(node: NodeProcess) -> None:
    user = fresh_user(node)
    assert user.put(f"{DEVICES}/{user.device_id}", {"display_name": "My phone"}) == {}
    assert user.get(f"{DEVICES}/{user.device_id}")["display_name"] == "My phone"


def test_rename_unknown_device_is_not_found(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.put(f"{DEVICES}/NOSUCHDEVICE", {"display_name": "x"})
    assert (user.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_rename_with_wrong_type_is_bad_json(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.put(f"{DEVICES}/{user.device_id}", {"display_name": 5})
    assert (user.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_devices_need_an_access_token(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(DEVICES)
    assert (client.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_delete_device_asks_for_password_first(node: NodeProcess) -> None:
    user = fresh_user(node)
    second_device(node, user, "SECOND")
    body = user.delete(f"{DEVICES}/SECOND")
    assert user.status == 401
    assert body["flows"] == [{"stages": ["m.login.password"]}]
    assert body["params"] == {} and body["session"]
    assert "SECOND" in [d["device_id"] for d in user.get(DEVICES)["devices"]]


def test_delete_device_with_password_revokes_its_token(node: NodeProcess) -> None:
    user = fresh_user(node)
    second = second_device(node, user, "SECOND")
    first = user.delete(f"{DEVICES}/SECOND")
    body = user.delete(f"{DEVICES}/SECOND", {"auth": password_auth(user, first["session"])})
    assert (user.status, body) == (200, {})
    assert second.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
    assert [d["device_id"] for d in user.get(DEVICES)["devices"]] == [user.device_id]


def test_delete_device_with_wrong_password_is_refused(node: NodeProcess) -> None:
    user = fresh_user(node)
    second = second_device(node, user, "SECOND")
    auth = {**password_auth(user), "password": "wrong password"}
    body = user.delete(f"{DEVICES}/SECOND", {"auth": auth})
    assert (user.status, body["errcode"]) == (401, "M_FORBIDDEN")
    assert second.get(WHOAMI)["device_id"] == "SECOND"


def test_delete_unknown_device_succeeds(node: NodeProcess) -> None:
    user = fresh_user(node)
    assert user.delete(f"{DEVICES}/NOSUCHDEVICE", {"auth": password_auth(user)}) == {}
    assert user.status == 200


def test_delete_devices_in_bulk(node: NodeProcess) -> None:
    user = fresh_user(node)
    seconds = [second_device(node, user, name) for name in ("TWO", "THREE")]
    first = user.post("/_matrix/client/v3/delete_devices", {"devices": ["TWO", "THREE"]})
    assert user.status == 401
    body = user.post("/_matrix/client/v3/delete_devices", {
        "devices": ["TWO", "THREE"], "auth": password_auth(user, first["session"])})
    assert (user.status, body) == (200, {})
    for client in seconds:
        assert client.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
    assert [d["device_id"] for d in user.get(DEVICES)["devices"]] == [user.device_id]


def test_delete_devices_needs_a_list_of_strings(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.post("/_matrix/client/v3/delete_devices", {"devices": [1, 2]})
    assert (user.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_delete_devices_without_list_is_a_missing_param(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.post("/_matrix/client/v3/delete_devices", {})
    assert (user.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_delete_own_device_on_both_engines(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    body = user.delete(f"{DEVICES}/{user.device_id}", {"auth": password_auth(user)})
    assert (user.status, body) == (200, {})
    assert user.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"


def test_device_last_seen_follows_its_latest_request(node: NodeProcess) -> None:
    # The order shows in the address (127.0.0.2 is loopback too): no time needs to pass.
    # The times themselves, by the node's clock: tests/test_accounts_last_seen.py.
    user = fresh_user(node)
    reader = second_device(node, user, "READER")
    user.get(WHOAMI)
    first = reader.get(f"{DEVICES}/{user.device_id}")
    elsewhere = Client(node.base_url, user.token, source_host="127.0.0.2")
    elsewhere.get(WHOAMI)
    device = reader.get(f"{DEVICES}/{user.device_id}")
    assert (first["last_seen_ip"], device["last_seen_ip"]) == ("127.0.0.1", "127.0.0.2")
    assert device["last_seen_ts"] >= first["last_seen_ts"]
