"""A realistic eGov application end to end on two real nodes of ours (SQLite, then PostgreSQL):
an admin of node A registers "Passport Seva" of mha with a callback URL (a real HTTP server on
loopback); the app uploads a PDF, sends an OTP to an employee of A named by employee ID and an
alert with the PDF to a user of B; both read them with matrix-nio as a phone app would; the
app receives signed ``delivered`` then ``read`` callbacks for each and reads the same status
from the API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import nio
import pytest

from broker.notice_rooms import NOTICE
from tests.nio_helpers import expect, initial_sync, register, sync_until
from tests.node_harness import Client, NodeProcess
from tests.peer_env import ENGINES
from tests.test_app_callbacks import Recorder
from tests.test_apps_nodes import mha_nodes, until_status

APPS = "/_broker/apps/v1"
PDF = b"%PDF-1.4 passport appointment"
WAIT_S = 30.0


@pytest.fixture(scope="module", params=ENGINES)
def nodes(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with mha_nodes(request.param, tmp_path_factory, "journey",
                   {"apps.allow_private_callbacks": True}) as pair:
        yield pair


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    yield made
    made.close()


def notice_of(message_id: str) -> Any:
    """A sync finder: the (room ID, event ID) of the app's message ``message_id``."""
    def find(response: nio.SyncResponse) -> tuple[str, str] | None:
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                marker = event.source.get("content", {}).get(NOTICE, {})
                if marker.get("id") == message_id:
                    return room_id, event.event_id
        return None
    return find


async def receive_and_read(client: nio.AsyncClient, app: Client, message_id: str) -> None:
    """What a phone does: sync until the message shows, sync again (the device has it:
    delivered, which the app sees), then the user opens it (read)."""
    await initial_sync(client)
    room_id, event_id = await sync_until(client, notice_of(message_id), deadline_s=WAIT_S)
    expect(await client.sync(timeout=0), nio.SyncResponse)
    await asyncio.to_thread(until_status, Client(app.base_url, app.token), message_id,
                            "delivered")
    expect(await client.room_read_markers(room_id, event_id, event_id),
           nio.RoomReadMarkersResponse)


def callbacks_for(recorder: Recorder, secret: str) -> dict[str, list[str]]:
    """Message ID -> the statuses its callbacks said, in order; every signature checked."""
    seen: dict[str, list[str]] = {}
    for _path, headers, body in list(recorder.received):
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Broker-Signature"] == expected
        payload = json.loads(body)
        assert set(payload) == {"message_id", "status", "recipient", "ts"}
        statuses = seen.setdefault(payload["message_id"], [])
        if payload["status"] not in statuses:
            statuses.append(payload["status"])
    return seen


def until_callbacks(recorder: Recorder, secret: str, wanted: dict[str, list[str]]) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        seen = callbacks_for(recorder, secret)
        if all(seen.get(m, [])[-len(s):] == s for m, s in wanted.items()):
            return
        time.sleep(0.1)
    raise AssertionError(f"callbacks seen {callbacks_for(recorder, secret)}, wanted {wanted}")


def test_an_egov_application_end_to_end(nodes: Any, recorder: Recorder) -> None:
    a, b = nodes
    admin = a.admin()
    app_json = admin.post("/_broker/admin/v1/apps", {
        "name": "Passport Seva", "organisation": "mha", "callback_url": recorder.url("/cb")})
    assert admin.status == 201, app_json
    app = Client(a.base_url, app_json["token"])

    async def run() -> None:
        asha = await register(a)  # an employee of mha on A, known to the app by employee ID
        bob = await register(b)  # a citizen on B
        try:
            admin.request("PATCH", f"/_broker/admin/v1/users/{asha.user_id}",
                          {"organisation": "mha", "employee_id": "E1042"})
            assert admin.status == 200
            otp = app.post(f"{APPS}/messages", {
                "to": {"organisation": "mha", "employee_id": "E1042"}, "kind": "otp",
                "body": "Your OTP is 493021", "ttl_s": 600, "idempotency_key": "otp-1"})
            assert app.status == 200, otp
            pdf = app.post(f"{APPS}/media", raw=PDF, params={"filename": "letter.pdf"},
                           headers={"Content-Type": "application/pdf"})
            alert = app.post(f"{APPS}/messages", {
                "to": bob.user_id, "kind": "alert", "body": "Your appointment letter",
                "attachments": [{"content_uri": pdf["content_uri"], "filename": "letter.pdf",
                                 "mimetype": "application/pdf"}]})
            assert app.status == 200, alert
            await asyncio.gather(receive_and_read(asha, app, otp["message_id"]),
                                 receive_and_read(bob, app, alert["message_id"]))
            wanted = {otp["message_id"]: ["delivered", "read"],
                      alert["message_id"]: ["delivered", "read"]}
            await asyncio.to_thread(until_callbacks, recorder, app_json["callback_secret"],
                                    wanted)
            for message_id, recipient in ((otp["message_id"], asha.user_id),
                                          (alert["message_id"], bob.user_id)):
                status = app.get(f"{APPS}/messages/{message_id}")
                assert (status["status"], status["recipient"]) == ("read", recipient)
                assert status["delivered_ts"] <= status["read_ts"]
        finally:
            await asha.close()
            await bob.close()

    asyncio.run(run())


def test_a_callback_that_hangs_or_fails_never_holds_up_sending(nodes: Any,
                                                              recorder: Recorder) -> None:
    a, _b = nodes
    admin = a.admin()
    recorder.behaviour.update({"/hang": "hang", "/fail": "fail"})
    apps = []
    for path in ("/hang", "/fail"):
        made = admin.post("/_broker/admin/v1/apps", {"name": f"App {path}",
                                                     "organisation": "mha",
                                                     "callback_url": recorder.url(path)})
        assert admin.status == 201, made
        apps.append(Client(a.base_url, made["token"]))

    async def run() -> None:
        reader = await register(a)
        try:
            await initial_sync(reader)
            for app in apps:
                for i in range(3):  # each delivery owes a callback that hangs or fails
                    sent = app.post(f"{APPS}/messages", {"to": reader.user_id, "kind": "alert",
                                                         "body": f"message {i}"})
                    assert app.status == 200, sent
                    await sync_until(reader, notice_of(sent["message_id"]), deadline_s=WAIT_S)
                    expect(await reader.sync(timeout=0), nio.SyncResponse)
                    await asyncio.to_thread(until_status, app, sent["message_id"],
                                            "delivered")
        finally:
            await reader.close()

    asyncio.run(run())
    assert {"/hang", "/fail"} <= set(recorder.paths())  # the callbacks were tried meanwhile
