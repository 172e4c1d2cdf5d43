"""``/register`` and ``/register/available``, plus registration and login rate limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.node_harness import NodeProcess

REGISTER = "/_matrix/client/v3/register"
AVAILABLE = "/_matrix/client/v3/register/available"
PASSWORD = "correct horse 1"
DUMMY = {"type": "m.login.dummy"}


@pytest.fixture(scope="module")
def strict_node(tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """A node with registration off and tight login rate limits."""
    running = NodeProcess(tmp_path_factory.mktemp("strict"), overrides={
        "registration.enabled": False, "rate_limits.enabled": True,
        "rate_limits.login.burst": 3, "rate_limits.login.per_second": 0.01}).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def limited_node(tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """A node with open registration but a burst of two registrations."""
    running = NodeProcess(tmp_path_factory.mktemp("limited"), overrides={
        "rate_limits.enabled": True, "rate_limits.registration.burst": 2,
        "rate_limits.registration.per_second": 0.01}).start()
    try:
        yield running
    finally:
        running.stop()


def name() -> str:
    return "r" + uuid.uuid4().hex[:10]


def test_register_without_auth_returns_the_dummy_flow(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": name(), "password": PASSWORD})
    assert client.status == 401
    assert body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert body["params"] == {}
    assert isinstance(body["session"], str) and body["session"]
    assert "errcode" not in body


def test_register_completes_with_dummy_stage_in_the_session(node: NodeProcess) -> None:
    client = node.client()
    username = name()
    first = client.post(REGISTER, {"username": username, "password": PASSWORD,
                                   "initial_device_display_name": "Phone"})
    body = client.post(REGISTER, {"username": username, "password": PASSWORD,
                                  "initial_device_display_name": "Phone",
                                  "auth": {**DUMMY, "session": first["session"]}})
    assert client.status == 200, body
    assert body["user_id"] == f"@{username}:{node.server_name}"
    assert body["home_server"] == node.server_name
    client.token = body["access_token"]
    device = client.get(f"/_matrix/client/v3/devices/{body['device_id']}")
    assert device["display_name"] == "Phone"


def test_session_cannot_be_reused_after_registering(node: NodeProcess) -> None:
    client = node.client()
    first = client.post(REGISTER, {"username": name(), "password": PASSWORD})
    client.post(REGISTER, {"username": name(), "password": PASSWORD,
                           "auth": {**DUMMY, "session": first["session"]}})
    assert client.status == 200
    body = client.post(REGISTER, {"username": name(), "password": PASSWORD,
                                  "auth": {**DUMMY, "session": first["session"]}})
    assert (client.status, body["errcode"]) == (400, "M_UNKNOWN")


def test_register_with_unknown_session_is_rejected(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": name(), "password": PASSWORD,
                                  "auth": {**DUMMY, "session": "no-such-session"}})
    assert (client.status, body["errcode"]) == (400, "M_UNKNOWN")


def test_register_with_a_stage_not_offered_is_rejected(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": name(), "password": PASSWORD,
                                  "auth": {"type": "m.login.recaptcha", "response": "x"}})
    assert (client.status, body["errcode"]) == (400, "M_UNRECOGNIZED")


def test_register_honours_device_id(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": name(), "password": PASSWORD,
                                  "device_id": "FIRSTDEVICE", "auth": DUMMY})
    assert body["device_id"] == "FIRSTDEVICE"


def test_register_lower_cases_the_username(node: NodeProcess) -> None:
    client = node.client()
    username = name()
    body = client.post(REGISTER, {"username": username.upper(), "password": PASSWORD,
                                  "auth": DUMMY})
    assert body["user_id"] == f"@{username}:{node.server_name}"


def test_register_without_username_generates_one(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"password": PASSWORD, "auth": DUMMY})
    assert client.status == 200, body
    assert body["user_id"].endswith(f":{node.server_name}")
    client.token = body["access_token"]
    assert client.get("/_matrix/client/v3/account/whoami")["user_id"] == body["user_id"]


def test_register_with_inhibit_login_returns_no_token(node: NodeProcess) -> None:
    client = node.client()
    username = name()
    body = client.post(REGISTER, {"username": username, "password": PASSWORD,
                                  "inhibit_login": True, "auth": DUMMY})
    assert client.status == 200
    assert body == {"user_id": f"@{username}:{node.server_name}", "home_server": node.server_name}


def test_registered_password_logs_in(node: NodeProcess) -> None:
    user = node.register(name(), PASSWORD)
    client = node.client()
    body = client.post("/_matrix/client/v3/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user.user_id},
        "password": PASSWORD})
    assert client.status == 200, body


def test_register_taken_username_is_user_in_use(node: NodeProcess) -> None:
    username = name()
    node.register(username)
    client = node.client()
    body = client.post(REGISTER, {"username": username, "password": PASSWORD, "auth": DUMMY})
    assert (client.status, body["errcode"]) == (400, "M_USER_IN_USE")


def test_taken_username_is_reported_before_auth(node: NodeProcess) -> None:
    username = name()
    node.register(username)
    client = node.client()
    body = client.post(REGISTER, {"username": username, "password": PASSWORD})
    assert (client.status, body["errcode"]) == (400, "M_USER_IN_USE")


@pytest.mark.parametrize("username", ["with space", "émile", "a:b", "@x", "a" * 300])
def test_register_invalid_username_is_rejected(node: NodeProcess, username: str) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": username, "password": PASSWORD, "auth": DUMMY})
    assert (client.status, body["errcode"]) == (400, "M_INVALID_USERNAME")


def test_register_short_password_is_weak(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": name(), "password": "short", "auth": DUMMY})
    assert (client.status, body["errcode"]) == (400, "M_WEAK_PASSWORD")


def test_register_without_password_is_a_missing_param(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": name(), "auth": DUMMY})
    assert (client.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_register_with_wrong_types_is_bad_json(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {"username": 42, "password": PASSWORD, "auth": DUMMY})
    assert (client.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_guest_registration_is_forbidden(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {}, params={"kind": "guest"})
    assert (client.status, body["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")


def test_unknown_registration_kind_is_invalid(node: NodeProcess) -> None:
    client = node.client()
    body = client.post(REGISTER, {}, params={"kind": "robot"})
    assert (client.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_username_availability(node: NodeProcess) -> None:
    username = name()
    client = node.client()
    assert client.get(AVAILABLE, params={"username": username}) == {"available": True}
    node.register(username)
    body = client.get(AVAILABLE, params={"username": username})
    assert (client.status, body["errcode"]) == (400, "M_USER_IN_USE")


def test_availability_of_invalid_username_is_rejected(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(AVAILABLE, params={"username": "Not Valid!"})
    assert (client.status, body["errcode"]) == (400, "M_INVALID_USERNAME")


def test_availability_without_username_is_a_missing_param(node: NodeProcess) -> None:
    client = node.client()
    body = client.get(AVAILABLE)
    assert (client.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_register_when_disabled_is_forbidden(strict_node: NodeProcess) -> None:
    client = strict_node.client()
    body = client.post(REGISTER, {"username": name(), "password": PASSWORD, "auth": DUMMY})
    assert client.status == 403
    assert body == {"errcode": "M_FORBIDDEN", "error": "Registration is disabled"}


def test_login_attempts_are_rate_limited(strict_node: NodeProcess) -> None:
    client = strict_node.client()
    attempt = {"type": "m.login.password", "user": "nobody", "password": "wrong password"}
    statuses = []
    for _ in range(5):
        body = client.post("/_matrix/client/v3/login", attempt)
        statuses.append(client.status)
    assert statuses[:3] == [403, 403, 403]
    assert statuses[3:] == [429, 429]
    assert body["errcode"] == "M_LIMIT_EXCEEDED" and body["retry_after_ms"] > 0


def test_registrations_are_rate_limited(limited_node: NodeProcess) -> None:
    client = limited_node.client()
    statuses = []
    for _ in range(3):
        body = client.post(REGISTER, {"username": name(), "password": PASSWORD, "auth": DUMMY})
        statuses.append(client.status)
    assert statuses == [200, 200, 429]
    assert body["errcode"] == "M_LIMIT_EXCEEDED"


def test_register_two_stage_flow_on_both_engines(any_node: NodeProcess) -> None:
    client = any_node.client()
    username = name()
    first = client.post(REGISTER, {"username": username, "password": PASSWORD})
    assert client.status == 401
    body = client.post(REGISTER, {"username": username, "password": PASSWORD,
                                  "auth": {**DUMMY, "session": first["session"]}})
    assert client.status == 200, body
    again = client.post(REGISTER, {"username": username, "password": PASSWORD, "auth": DUMMY})
    assert (client.status, again["errcode"]) == (400, "M_USER_IN_USE")
