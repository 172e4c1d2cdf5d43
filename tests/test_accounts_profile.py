"""``/profile`` and ``/capabilities`` against a running node."""

from __future__ import annotations

import uuid

import pytest

from tests.node_harness import Client, NodeProcess

PROFILE = "/_matrix/client/v3/profile"


def fresh_user(node: NodeProcess) -> Client:
    return node.register("f" + uuid.uuid4().hex[:10])


def localpart(user: Client) -> str:
    return user.user_id[1:].split(":")[0]


def test_new_profile_has_the_localpart_as_display_name(node: NodeProcess) -> None:
    user = fresh_user(node)
    assert node.client().get(f"{PROFILE}/{user.user_id}") == {
        "displayname": localpart(user), "in.gov.broker.class": "public"}


def test_set_and_read_display_name(node: NodeProcess) -> None:
    user = fresh_user(node)
    assert user.put(f"{PROFILE}/{user.user_id}/displayname", {"displayname": "Asha R."}) == {}
    reader = node.client()
    assert reader.get(f"{PROFILE}/{user.user_id}/displayname") == {"displayname": "Asha R."}
    assert reader.get(f"{PROFILE}/{user.user_id}")["displayname"] == "Asha R."


def test_set_and_read_avatar_url(node: NodeProcess) -> None:
    user = fresh_user(node)
    url = f"mxc://{node.server_name}/abcdef"
    assert user.put(f"{PROFILE}/{user.user_id}/avatar_url", {"avatar_url": url}) == {}
    assert node.client().get(f"{PROFILE}/{user.user_id}/avatar_url") == {"avatar_url": url}


def test_unset_avatar_url_reads_as_empty(node: NodeProcess) -> None:
    user = fresh_user(node)
    assert node.client().get(f"{PROFILE}/{user.user_id}/avatar_url") == {}


def test_clearing_the_display_name(node: NodeProcess) -> None:
    user = fresh_user(node)
    user.put(f"{PROFILE}/{user.user_id}/displayname", {"displayname": ""})
    assert user.status == 200
    assert "displayname" not in user.get(f"{PROFILE}/{user.user_id}")


def test_changing_another_users_profile_is_forbidden(node: NodeProcess) -> None:
    user = fresh_user(node)
    other = fresh_user(node)
    body = user.put(f"{PROFILE}/{other.user_id}/displayname", {"displayname": "Mallory"})
    assert (user.status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert node.client().get(f"{PROFILE}/{other.user_id}/displayname") == {
        "displayname": localpart(other)}


def test_changing_a_profile_needs_an_access_token(node: NodeProcess) -> None:
    user = fresh_user(node)
    client = node.client()
    body = client.put(f"{PROFILE}/{user.user_id}/displayname", {"displayname": "x"})
    assert (client.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


@pytest.mark.parametrize("suffix", ["", "/displayname", "/avatar_url"])
def test_unknown_user_profile_is_not_found(node: NodeProcess, suffix: str) -> None:
    client = node.client()
    body = client.get(f"{PROFILE}/@nobody{uuid.uuid4().hex[:6]}:{node.server_name}{suffix}")
    assert (client.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_malformed_user_id_is_invalid(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(f"{PROFILE}/not-a-user-id")
    assert (client.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_remote_user_profile_is_not_found(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(f"{PROFILE}/@alice:elsewhere.test")
    assert (client.status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_display_name_must_be_a_string(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.put(f"{PROFILE}/{user.user_id}/displayname", {"displayname": 12})
    assert (user.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_display_name_is_required_in_the_body(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.put(f"{PROFILE}/{user.user_id}/displayname", {})
    assert (user.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_overlong_display_name_is_invalid(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.put(f"{PROFILE}/{user.user_id}/displayname", {"displayname": "x" * 257})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_avatar_url_must_be_an_mxc_uri(node: NodeProcess) -> None:
    user = fresh_user(node)
    body = user.put(f"{PROFILE}/{user.user_id}/avatar_url",
                    {"avatar_url": "https://example.org/me.png"})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_capabilities(node: NodeProcess) -> None:
    user = fresh_user(node)
    caps = user.get("/_matrix/client/v3/capabilities")["capabilities"]
    assert caps["m.room_versions"] == {
        "default": "12", "available": {"10": "stable", "11": "stable", "12": "stable"}}
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.set_displayname"] == {"enabled": True}
    assert caps["m.set_avatar_url"] == {"enabled": True}
    assert caps["m.3pid_changes"] == {"enabled": False}
    assert caps["m.profile_fields"] == {"enabled": True, "allowed": ["displayname", "avatar_url"]}


def test_capabilities_need_an_access_token(node: NodeProcess) -> None:
    client = node.client()
    body = client.get("/_matrix/client/v3/capabilities")
    assert (client.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_display_name_round_trip_on_both_engines(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    user.put(f"{PROFILE}/{user.user_id}/displayname", {"displayname": "Both Engines"})
    assert user.status == 200
    assert any_node.client().get(f"{PROFILE}/{user.user_id}")["displayname"] == "Both Engines"
