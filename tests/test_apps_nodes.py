"""An eGov application on two real nodes of ours on loopback, on SQLite then PostgreSQL: an
admin of node A registers an app of mha over HTTP; the app uploads a PDF and sends an alert
with it to a user of A and an OTP to a user of B; both see the messages from the app's sender
without accepting anything (B joins its user itself, the sender being verified by A's
attestation); the status moves to delivered as they sync; a revoked token is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.notice_rooms import NOTICE
from tests.node_harness import Client, NodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.room_helpers import V3

APPS = "/_broker/apps/v1"
PDF = b"%PDF-1.4 appointment letter"
MAX_UPLOAD = 4096


@contextmanager
def mha_nodes(engine: str, tmp_path_factory: Any, name: str, overrides: dict[str, Any]
              ) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """Two federated nodes of ours, each with the organisation mha, ``overrides`` in both."""
    orgs = Path(tmp_path_factory.mktemp(f"{name}_orgs")) / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
    with two_nodes(engine, tmp_path_factory, name,
                   {"organisations.path": str(orgs), **overrides}) as (a, b):
        yield a, b


@pytest.fixture(scope="module", params=ENGINES)
def nodes(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with mha_nodes(request.param, tmp_path_factory, "apps",
                   {"limits.max_upload_bytes": MAX_UPLOAD}) as pair:
        yield pair


def register_app(node: NodeProcess) -> Client:
    admin = node.admin()
    app = admin.post("/_broker/admin/v1/apps", {"name": "Passport Seva",
                                                "organisation": "mha"})
    assert admin.status == 201, app
    client = node.client()
    client.token, client.user_id = app["token"], app["sender"]
    return client


def notices(client: Client, since: str | None = None) -> tuple[list[dict[str, Any]], str]:
    params = {"timeout": "0", **({"since": since} if since else {})}
    body = client.get(f"{V3}/sync", params=params)
    assert client.status == 200, body
    found = [e for room in body["rooms"]["join"].values() for e in room["timeline"]["events"]
             if NOTICE in e.get("content", {})]
    return found, str(body["next_batch"])


def until_notice(client: Client, timeout: float = 30.0) -> tuple[dict[str, Any], str]:
    """Sync until a message of an app arrives; it and the sync's next token."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, token = notices(client)
        if found:
            return found[-1], token
        time.sleep(0.1)
    raise AssertionError(f"no app message reached {client.user_id}")


def until_status(app: Client, message_id: str, wanted: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.get(f"{APPS}/messages/{message_id}")["status"] == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"{message_id} never became {wanted}")


def test_an_alert_with_a_pdf_reaches_a_user_of_the_same_node(nodes: Any) -> None:
    a, _b = nodes
    app = register_app(a)
    asha = a.register()
    uploaded = app.post(f"{APPS}/media", raw=PDF, params={"filename": "letter.pdf"},
                        headers={"Content-Type": "application/pdf"})
    assert app.status == 200, uploaded
    sent = app.post(f"{APPS}/messages", {
        "to": asha.user_id, "kind": "alert", "body": "Your appointment letter",
        "attachments": [{"content_uri": uploaded["content_uri"], "filename": "letter.pdf",
                         "mimetype": "application/pdf"}]})
    assert app.status == 200, sent
    event, token = until_notice(asha)
    assert event["sender"] == app.user_id and event["content"]["msgtype"] == "m.file"
    media = uploaded["content_uri"].removeprefix("mxc://")
    assert asha.get(f"/_matrix/client/v1/media/download/{media}") == PDF
    notices(asha, token)  # a later sync: the device has it
    until_status(app, sent["message_id"], "delivered")


def test_an_otp_reaches_a_user_of_another_node_without_accepting(nodes: Any) -> None:
    a, b = nodes
    app = register_app(a)
    bob = b.register()
    sent = app.post(f"{APPS}/messages", {"to": bob.user_id, "kind": "otp",
                                         "body": "OTP 493021", "ttl_s": 600})
    assert app.status == 200, sent
    event, _ = until_notice(bob)
    assert event["content"][NOTICE] == {"kind": "otp", "id": sent["message_id"]}
    assert event["sender"] == app.user_id


def test_a_large_upload_is_refused_and_a_revoked_token_too(nodes: Any) -> None:
    a, _b = nodes
    app = register_app(a)
    answer = app.post(f"{APPS}/media", raw=b"x" * (MAX_UPLOAD + 1),
                      headers={"Content-Type": "application/pdf"})
    assert (app.status, answer["errcode"]) == (413, "M_TOO_LARGE")
    answer = app.post(f"{APPS}/messages", {"to": app.user_id, "kind": "alert",
                                           "body": "x" * 70_000})
    assert (app.status, answer["errcode"]) == (413, "M_TOO_LARGE")
    admin = a.admin()
    admin.delete(f"/_broker/admin/v1/apps/{app.get(f'{APPS}/app')['app_id']}")
    answer = app.get(f"{APPS}/app")
    assert (app.status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_a_group_invites_a_member_of_another_node(nodes: Any) -> None:
    a, b = nodes
    app = register_app(a)
    asha, bob = a.register(), b.register()
    group = app.post(f"{APPS}/groups", {"name": "Passport office",
                                        "members": [asha.user_id, bob.user_id]})
    assert app.status == 200, group
    deadline = time.monotonic() + 30
    while group["room_id"] not in bob.get(f"{V3}/sync", params={"timeout": "0"})["rooms"][
            "invite"]:
        assert time.monotonic() < deadline, "the invite never reached the other node"
        time.sleep(0.1)
    shown = app.get(f"{APPS}/groups/{group['group_id']}")
    assert (shown["members"], shown["invited"]) == ([asha.user_id], [bob.user_id])
