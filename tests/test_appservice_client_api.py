"""The Client-Server API for application services: the as_token acts as the service's
sender, ``?user_id=`` masquerades as a user it registered in its namespace, registration
with ``m.login.application_service``, exclusive namespaces, rate limits and ``/ping``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.appservice_helpers import RecordingService, registration_file, running_service
from tests.node_harness import Client, NodeProcess, free_port

REGISTER = "/_matrix/client/v3/register"
WHOAMI = "/_matrix/client/v3/account/whoami"
AS_LOGIN = "m.login.application_service"


@pytest.fixture(scope="module")
def service() -> Iterator[RecordingService]:
    with running_service() as running:
        yield running


@pytest.fixture(scope="module")
def as_node(tmp_path_factory: Any, service: RecordingService) -> Iterator[NodeProcess]:
    """A node with four services: ``bridge`` (on the recording server, not rate limited),
    ``limited`` (rate limited), ``silent`` (no URL) and ``gone`` (nothing listens)."""
    folder = tmp_path_factory.mktemp("as")
    server_name = "asnode.test"
    files = [
        registration_file(folder, "bridge", url=service.url, prefix="bridge",
                          server_name=server_name),
        registration_file(folder, "limited", url=service.url, prefix="limited",
                          server_name=server_name, rate_limited=True),
        registration_file(folder, "silent", url=None, prefix="silent",
                          server_name=server_name),
        registration_file(folder, "gone", url=f"http://127.0.0.1:{free_port()}",
                          prefix="gone", server_name=server_name)]
    running = NodeProcess(folder, server_name=server_name, overrides={
        "app_services": [str(f) for f in files], "rate_limits.enabled": True,
        "rate_limits.messages.burst": 3, "rate_limits.messages.per_second": 0.001}).start()
    try:
        yield running
    finally:
        running.stop()


def as_client(node: NodeProcess, service_id: str) -> Client:
    return Client(node.base_url, f"{service_id}-as")


def register_for(node: NodeProcess, service_id: str, localpart: str,
                 **extra: Any) -> tuple[Client, Any]:
    client = as_client(node, service_id)
    body = client.post(REGISTER, {"type": AS_LOGIN, "username": localpart, **extra})
    return client, body


def bridged(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_the_as_token_acts_as_the_sender(as_node: NodeProcess) -> None:
    client = as_client(as_node, "bridge")
    assert client.get(WHOAMI)["user_id"] == f"@bridgebot:{as_node.server_name}"


def test_registering_a_user_of_the_namespace_gives_it_a_session(as_node: NodeProcess) -> None:
    localpart = bridged("bridge")
    client, body = register_for(as_node, "bridge", localpart)
    assert client.status == 200, body
    assert body["user_id"] == f"@{localpart}:{as_node.server_name}"
    own = Client(as_node.base_url, body["access_token"])
    assert own.get(WHOAMI)["user_id"] == body["user_id"]


def test_registering_without_login_answers_the_user_only(as_node: NodeProcess) -> None:
    client, body = register_for(as_node, "bridge", bridged("bridge"), inhibit_login=True)
    assert client.status == 200 and "access_token" not in body


def test_registering_twice_is_in_use(as_node: NodeProcess) -> None:
    localpart = bridged("bridge")
    register_for(as_node, "bridge", localpart, inhibit_login=True)
    client, body = register_for(as_node, "bridge", localpart, inhibit_login=True)
    assert (client.status, body["errcode"]) == (400, "M_USER_IN_USE")


def test_a_service_cannot_register_outside_its_namespace(as_node: NodeProcess) -> None:
    client, body = register_for(as_node, "bridge", bridged("limited"))
    assert (client.status, body["errcode"]) == (400, "M_EXCLUSIVE")


def test_application_service_registration_needs_a_service_token(as_node: NodeProcess) -> None:
    user = as_node.register()
    body = user.post(REGISTER, {"type": AS_LOGIN, "username": bridged("bridge")})
    assert (user.status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_nobody_else_may_register_in_an_exclusive_namespace(as_node: NodeProcess) -> None:
    client = as_node.client()
    body = client.post(REGISTER, {"username": bridged("bridge"), "password": "correct horse 1",
                                  "auth": {"type": "m.login.dummy"}})
    assert (client.status, body["errcode"]) == (400, "M_EXCLUSIVE")
    body = client.get("/_matrix/client/v3/register/available",
                      params={"username": bridged("bridge")})
    assert (client.status, body["errcode"]) == (400, "M_EXCLUSIVE")


def test_masquerading_acts_as_a_registered_user(as_node: NodeProcess) -> None:
    localpart = bridged("bridge")
    client, body = register_for(as_node, "bridge", localpart, inhibit_login=True)
    whoami = client.get(WHOAMI, params={"user_id": body["user_id"]})
    assert client.status == 200 and whoami["user_id"] == body["user_id"]


def test_masquerading_as_a_deactivated_user_is_forbidden(as_node: NodeProcess) -> None:
    client, body = register_for(as_node, "bridge", bridged("bridge"), inhibit_login=True)
    client.get(WHOAMI, params={"user_id": body["user_id"]})
    assert client.status == 200  # remembered as registered
    admin = as_node.admin()
    admin.post(f"/_broker/admin/v1/users/{quote(body['user_id'])}/deactivate", {})
    assert admin.status == 200
    answer = client.get(WHOAMI, params={"user_id": body["user_id"]})
    assert (client.status, answer["errcode"]) == (403, "M_FORBIDDEN")


def test_masquerading_outside_the_namespace_is_exclusive(as_node: NodeProcess) -> None:
    user = as_node.register()
    client = as_client(as_node, "bridge")
    body = client.get(WHOAMI, params={"user_id": user.user_id})
    assert (client.status, body["errcode"]) == (403, "M_EXCLUSIVE")


def test_masquerading_as_an_unregistered_user_is_forbidden(as_node: NodeProcess) -> None:
    client = as_client(as_node, "bridge")
    body = client.get(WHOAMI, params={"user_id": f"@{bridged('bridge')}:{as_node.server_name}"})
    assert (client.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_user_id_of_an_ordinary_token_is_ignored(as_node: NodeProcess) -> None:
    user = as_node.register()
    other = as_node.register()
    assert user.get(WHOAMI, params={"user_id": other.user_id})["user_id"] == user.user_id


def _send_until_refused(client: Client, room_id: str, user_id: str, tries: int) -> int:
    """How many of ``tries`` messages were accepted before the first refusal."""
    for i in range(tries):
        client.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t{uuid.uuid4().hex}",
                   {"msgtype": "m.text", "body": str(i)}, params={"user_id": user_id})
        if client.status != 200:
            assert client.status == 429
            return i
    return tries


@pytest.mark.parametrize(("service_id", "limited"), [("bridge", False), ("limited", True)])
def test_rate_limited_false_exempts_masqueraded_users(
        as_node: NodeProcess, service_id: str, limited: bool) -> None:
    client, body = register_for(as_node, service_id, bridged(service_id), inhibit_login=True)
    user_id = body["user_id"]
    room = client.post("/_matrix/client/v3/createRoom", {"preset": "public_chat"},
                       params={"user_id": user_id})
    assert client.status == 200, room
    accepted = _send_until_refused(client, room["room_id"], user_id, 6)
    assert accepted == (3 if limited else 6)


def test_the_sender_is_never_rate_limited(as_node: NodeProcess) -> None:
    client = as_client(as_node, "limited")
    room = client.post("/_matrix/client/v3/createRoom", {"preset": "public_chat"})
    assert _send_until_refused(client, room["room_id"], "", 6) == 6


def ping(node: NodeProcess, token_of: str, service_id: str, body: Any = None) -> tuple[int, Any]:
    client = as_client(node, token_of)
    answer = client.post(f"/_matrix/client/v1/appservice/{service_id}/ping", body or {})
    return client.status, answer


def test_ping_calls_the_service_with_its_hs_token(as_node: NodeProcess,
                                                  service: RecordingService) -> None:
    status, body = ping(as_node, "bridge", "bridge", {"transaction_id": "mautrix-ping-1"})
    assert status == 200 and isinstance(body["duration_ms"], int)
    [(_, _, authorization, sent)] = [r for r in list(service.requests)
                                     if r[:2] == ("POST", "/_matrix/app/v1/ping")]
    assert authorization == "Bearer bridge-hs"
    assert sent == {"transaction_id": "mautrix-ping-1"}


def test_ping_of_a_failing_service_reports_its_status(as_node: NodeProcess,
                                                      service: RecordingService) -> None:
    service.status = 500
    try:
        status, body = ping(as_node, "bridge", "bridge")
    finally:
        service.status = 200
    assert (status, body["errcode"], body["status"]) == (502, "M_BAD_STATUS", 500)
    assert "M_UNKNOWN" in body["body"]


def test_ping_of_an_unreachable_service_is_a_connection_failure(as_node: NodeProcess) -> None:
    status, body = ping(as_node, "gone", "gone")
    assert (status, body["errcode"]) == (502, "M_CONNECTION_FAILED")


def test_ping_of_a_service_without_url(as_node: NodeProcess) -> None:
    status, body = ping(as_node, "silent", "silent")
    assert (status, body["errcode"]) == (400, "M_URL_NOT_SET")


def test_ping_of_another_service_is_forbidden(as_node: NodeProcess) -> None:
    status, body = ping(as_node, "limited", "bridge")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_login_flows_offer_the_application_service_login(as_node: NodeProcess) -> None:
    flows = as_node.client().get("/_matrix/client/v3/login")["flows"]
    assert {"type": AS_LOGIN} in flows and {"type": "m.login.password"} in flows


def test_a_service_logs_in_a_user_of_its_namespace(as_node: NodeProcess) -> None:
    client, body = register_for(as_node, "bridge", bridged("bridge"), inhibit_login=True)
    login = client.post("/_matrix/client/v3/login", {
        "type": AS_LOGIN, "identifier": {"type": "m.id.user", "user": body["user_id"]}})
    assert client.status == 200 and login["user_id"] == body["user_id"]
    own = Client(as_node.base_url, login["access_token"])
    assert own.get(WHOAMI) == {"user_id": body["user_id"], "device_id": login["device_id"],
                               "is_guest": False}


def test_a_service_cannot_log_in_a_user_outside_its_namespace(as_node: NodeProcess) -> None:
    user = as_node.register()
    client = as_client(as_node, "bridge")
    body = client.post("/_matrix/client/v3/login", {
        "type": AS_LOGIN, "identifier": {"type": "m.id.user", "user": user.user_id}})
    assert (client.status, body["errcode"]) == (403, "M_EXCLUSIVE")


def test_application_service_login_needs_a_service_token(as_node: NodeProcess) -> None:
    client = as_node.client()
    body = client.post("/_matrix/client/v3/login", {
        "type": AS_LOGIN, "identifier": {"type": "m.id.user", "user": "bridge_x"}})
    assert (client.status, body["errcode"]) == (401, "M_MISSING_TOKEN")
