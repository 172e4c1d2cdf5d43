"""``/account/password`` and ``/account/deactivate``: both behind m.login.password UIA."""

from __future__ import annotations

import uuid
from typing import Any

from tests.node_harness import Client, NodeProcess

CHANGE = "/_matrix/client/v3/account/password"
DEACTIVATE = "/_matrix/client/v3/account/deactivate"
WHOAMI = "/_matrix/client/v3/account/whoami"
PASSWORD = "correct horse 1"
NEW_PASSWORD = "battery staple 2"


def fresh_user(node: NodeProcess) -> Client:
    return node.register("p" + uuid.uuid4().hex[:10], PASSWORD)


def password_auth(user: Client, password: str, session: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"type": "m.login.password", "password": password,
                            "identifier": {"type": "m.id.user", "user": user.user_id}}
    if session is not None:
        auth["session"] = session
    return auth


def login(node: NodeProcess, user_id: str, password: str) -> tuple[Client, Any]:
    client = node.client()
    body = client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "user": user_id, "password": password})
    if client.status == 200:
        client.token = body["access_token"]
    return client, body


def test_password_change_without_auth_asks_for_the_password(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.post(CHANGE, {"new_password": NEW_PASSWORD})
    assert user.status == 401
    assert body["flows"] == [{"stages": ["m.login.password"]}]
    assert body["session"]


def test_password_change_with_session_then_login_with_new_password(node: NodeProcess) -> None:
    user = fresh_user(node)
    first = user.post(CHANGE, {"new_password": NEW_PASSWORD})
    body = user.post(CHANGE, {"new_password": NEW_PASSWORD,
                              "auth": password_auth(user, PASSWORD, first["session"])})
    assert (user.status, body) == (200, {})
    assert login(node, user.user_id, PASSWORD)[0].status == 403
    assert login(node, user.user_id, NEW_PASSWORD)[0].status == 200


def test_password_change_with_wrong_old_password_keeps_the_session(node: NodeProcess) -> None:
    user = fresh_user(node)
    first = user.post(CHANGE, {"new_password": NEW_PASSWORD})
    body = user.post(CHANGE, {"new_password": NEW_PASSWORD,
                              "auth": password_auth(user, "not my password", first["session"])})
    assert user.status == 401
    assert body["errcode"] == "M_FORBIDDEN"
    assert body["session"] == first["session"]
    assert body["flows"] == [{"stages": ["m.login.password"]}]
    user.post(CHANGE, {"new_password": NEW_PASSWORD,
                       "auth": password_auth(user, PASSWORD, first["session"])})
    assert user.status == 200


def test_password_change_logs_out_other_devices_but_not_this_one(node: NodeProcess) -> None:
    user = fresh_user(node)
    other, _ = login(node, user.user_id, PASSWORD)
    user.post(CHANGE, {"new_password": NEW_PASSWORD, "auth": password_auth(user, PASSWORD)})
    assert user.status == 200
    assert user.get(WHOAMI)["user_id"] == user.user_id
    assert other.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
    devices = user.get("/_matrix/client/v3/devices")["devices"]
    assert [d["device_id"] for d in devices] == [user.device_id]


def test_password_change_can_keep_other_devices(node: NodeProcess) -> None:
    user = fresh_user(node)
    other, _ = login(node, user.user_id, PASSWORD)
    user.post(CHANGE, {"new_password": NEW_PASSWORD, "logout_devices": False,
                       "auth": password_auth(user, PASSWORD)})
    assert user.status == 200
    assert other.get(WHOAMI)["user_id"] == user.user_id


def test_password_change_must_prove_own_password(node: NodeProcess) -> None:
    user = fresh_user(node)
    stranger = fresh_user(node)
    body = user.post(CHANGE, {"new_password": NEW_PASSWORD,
                              "auth": password_auth(stranger, PASSWORD)})
    assert (user.status, body["errcode"]) == (401, "M_FORBIDDEN")
    assert login(node, stranger.user_id, PASSWORD)[0].status == 200


def test_password_change_to_a_weak_password_is_refused(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.post(CHANGE, {"new_password": "short", "auth": password_auth(user, PASSWORD)})
    assert (user.status, body["errcode"]) == (400, "M_WEAK_PASSWORD")


def test_password_change_without_new_password_is_a_missing_param(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.post(CHANGE, {"auth": password_auth(user, PASSWORD)})
    assert (user.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_password_change_needs_an_access_token(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(CHANGE, {"new_password": NEW_PASSWORD})
    assert (client.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_uia_session_is_bound_to_its_endpoint(node: NodeProcess) -> None:
    user = fresh_user(node)
    first = user.post(CHANGE, {"new_password": NEW_PASSWORD})
    body = user.post(DEACTIVATE, {"auth": password_auth(user, PASSWORD, first["session"])})
    assert (user.status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert user.get(WHOAMI)["user_id"] == user.user_id


def test_uia_session_is_bound_to_its_user(node: NodeProcess) -> None:
    user = fresh_user(node)
    other = fresh_user(node)
    first = user.post(CHANGE, {"new_password": NEW_PASSWORD})
    body = other.post(CHANGE, {"new_password": NEW_PASSWORD,
                               "auth": password_auth(other, PASSWORD, first["session"])})
    assert (other.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_deactivate_revokes_tokens_and_refuses_login(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.post(DEACTIVATE, {"auth": password_auth(user, PASSWORD)})
    assert (user.status, body) == (200, {"id_server_unbind_result": "no-support"})
    assert user.get(WHOAMI)["errcode"] == "M_UNKNOWN_TOKEN"
    client, body = login(node, user.user_id, PASSWORD)
    assert (client.status, body["errcode"]) == (403, "M_USER_DEACTIVATED")


def test_deactivated_user_name_stays_taken(node: NodeProcess) -> None:
    user = fresh_user(node)
    user.post(DEACTIVATE, {"auth": password_auth(user, PASSWORD)})
    client = node.client()
    body = client.post("/_matrix/client/v3/register", {
        "username": user.user_id[1:].split(":")[0], "password": PASSWORD,
        "auth": {"type": "m.login.dummy"}})
    assert (client.status, body["errcode"]) == (400, "M_USER_IN_USE")


def test_deactivate_with_erase_clears_the_profile(node: NodeProcess) -> None:
    user = fresh_user(node)
    user.post(DEACTIVATE, {"erase": True, "auth": password_auth(user, PASSWORD)})
    assert user.status == 200
    assert node.client().get(f"/_matrix/client/v3/profile/{user.user_id}") == {
        "in.gov.broker.class": "public"}  # the node's field: the account is no one's now


def test_deactivate_with_wrong_password_is_refused(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.post(DEACTIVATE, {"auth": password_auth(user, "wrong password")})
    assert (user.status, body["errcode"]) == (401, "M_FORBIDDEN")
    assert user.get(WHOAMI)["user_id"] == user.user_id


def test_password_change_on_both_engines(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    first = user.post(CHANGE, {"new_password": NEW_PASSWORD})
    user.post(CHANGE, {"new_password": NEW_PASSWORD,
                       "auth": password_auth(user, PASSWORD, first["session"])})
    assert user.status == 200
    assert login(any_node, user.user_id, NEW_PASSWORD)[0].status == 200


def test_deactivated_user_leaves_their_rooms(node: NodeProcess) -> None:
    from tests.room_helpers import create_room, join, room_path

    owner = fresh_user(node)
    user = fresh_user(node)
    room_id = create_room(owner, preset="public_chat")
    join(user, room_id)
    user.post(DEACTIVATE, {"auth": password_auth(user, PASSWORD)})
    assert user.status == 200
    assert user.user_id not in owner.get(room_path(room_id, "joined_members"))["joined"]
