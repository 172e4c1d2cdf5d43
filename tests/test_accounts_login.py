"""``/login``, ``/logout``, ``/logout/all`` and ``/account/whoami`` against a running node."""

from __future__ import annotations

import uuid

from tests.node_harness import Client, NodeProcess

LOGIN = "/_matrix/client/v3/login"
WHOAMI = "/_matrix/client/v3/account/whoami"
PASSWORD = "correct horse 1"


def fresh_user(node: NodeProcess) -> Client:
    return node.register("l" + uuid.uuid4().hex[:10], PASSWORD)


def login(node: NodeProcess, body: dict) -> tuple[Client, dict]:
    client = node.client()
    response = client.post(LOGIN, {"type": "m.login.password", "password": PASSWORD, **body})
    return client, response


def test_login_flows_offer_password(node: NodeProcess) -> None:
    client = node.client()
    assert client.get(LOGIN) == {"flows": [{"type": "m.login.password"}]}
    assert client.status == 200


def test_login_with_identifier_and_localpart(node: NodeProcess) -> None:
    user = fresh_user(node)
    localpart = user.user_id[1:].split(":")[0]
    client, body = login(node, {"identifier": {"type": "m.id.user", "user": localpart}})
    assert client.status == 200, body
    assert body["user_id"] == user.user_id
    assert body["home_server"] == node.server_name
    assert body["device_id"] != user.device_id
    client.token = body["access_token"]
    assert client.get(WHOAMI) == {"user_id": user.user_id, "device_id": body["device_id"],
                                  "is_guest": False}


def test_login_with_legacy_user_field_and_full_user_id(node: NodeProcess) -> None:
    user = fresh_user(node)
    client, body = login(node, {"user": user.user_id})
    assert client.status == 200, body
    assert body["user_id"] == user.user_id


def test_login_is_case_insensitive_for_the_user_name(node: NodeProcess) -> None:
    user = fresh_user(node)
    client, body = login(node, {"user": user.user_id.upper().replace(
        node.server_name.upper(), node.server_name)})
    assert client.status == 200, body
    assert body["user_id"] == user.user_id


def test_login_honours_device_id_and_display_name(node: NodeProcess) -> None:
    user = fresh_user(node)
    client, body = login(node, {"user": user.user_id, "device_id": "MYLAPTOP",
                                "initial_device_display_name": "Work laptop"})
    assert body["device_id"] == "MYLAPTOP"
    client.token = body["access_token"]
    assert client.get("/_matrix/client/v3/devices/MYLAPTOP")["display_name"] == "Work laptop"


def test_login_again_on_same_device_revokes_its_old_token(node: NodeProcess) -> None:
    user = fresh_user(node)
    first, body1 = login(node, {"user": user.user_id, "device_id": "PHONE"})
    first.token = body1["access_token"]
    second, body2 = login(node, {"user": user.user_id, "device_id": "PHONE"})
    assert body2["device_id"] == "PHONE"
    assert first.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
    assert first.status == 401


def test_login_with_wrong_password_is_forbidden(node: NodeProcess) -> None:
    user = fresh_user(node)
    client, body = login(node, {"user": user.user_id, "password": "wrong password"})
    assert client.status == 403
    assert body["errcode"] == "M_FORBIDDEN"


def test_login_as_unknown_user_is_forbidden(node: NodeProcess) -> None:
    client, body = login(node, {"user": "nobody" + uuid.uuid4().hex[:8]})
    assert (client.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_login_as_user_of_another_server_is_forbidden(node: NodeProcess) -> None:
    client, body = login(node, {"user": "@alice:elsewhere.test"})
    assert (client.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_login_with_unknown_type_is_rejected(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(LOGIN, {"type": "m.login.token", "token": "abc"})
    assert (client.status, body["errcode"]) == (400, "M_UNKNOWN")


def test_login_with_third_party_identifier_is_rejected(node: NodeProcess) -> None:
    client, body = login(node, {"identifier": {"type": "m.id.thirdparty", "medium": "email",
                                               "address": "a@example.gov"}})
    assert (client.status, body["errcode"]) == (400, "M_UNKNOWN")


def test_login_without_user_is_a_missing_param(node: NodeProcess) -> None:
    client, body = login(node, {})
    assert (client.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_login_without_password_is_a_missing_param(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(LOGIN, {"type": "m.login.password", "user": "someone"})
    assert (client.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_login_with_non_json_body_is_rejected(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(LOGIN, raw=b"not json", headers={"Content-Type": "application/json"})
    assert (client.status, body["errcode"]) == (400, "M_NOT_JSON")


def test_whoami_without_token_is_missing_token(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(WHOAMI)
    assert (client.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_logout_revokes_token_and_deletes_device(node: NodeProcess) -> None:
    user = fresh_user(node)
    other, body = login(node, {"user": user.user_id})
    other.token = body["access_token"]
    assert other.post("/_matrix/client/v3/logout") == {}
    assert other.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
    devices = [d["device_id"] for d in user.get("/_matrix/client/v3/devices")["devices"]]
    assert devices == [user.device_id]


def test_logout_all_revokes_every_token(node: NodeProcess) -> None:
    user = fresh_user(node)
    other, body = login(node, {"user": user.user_id})
    other.token = body["access_token"]
    assert user.post("/_matrix/client/v3/logout/all") == {}
    for client in (user, other):
        assert client.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
    client, body = login(node, {"user": user.user_id})
    client.token = body["access_token"]
    assert len(client.get("/_matrix/client/v3/devices")["devices"]) == 1


def test_whoami_on_both_engines(any_node: NodeProcess) -> None:
    user = any_node.register()
    assert any_node.client().get(WHOAMI, headers={"Authorization": f"Bearer {user.token}"}) == {
        "user_id": user.user_id, "device_id": user.device_id, "is_guest": False}


def test_login_then_logout_on_both_engines(any_node: NodeProcess) -> None:
    user = any_node.register("b" + uuid.uuid4().hex[:10], PASSWORD)
    client, body = login(any_node, {"identifier": {"type": "m.id.user", "user": user.user_id}})
    assert client.status == 200, body
    client.token = body["access_token"]
    assert client.post("/_matrix/client/v3/logout") == {}
    assert client.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
