"""Sending through the application API (``POST /_broker/apps/v1/messages``) on both
engines: a message reaches the recipient's read-only notice room from the app's sender,
marked, with its status readable; recipients by user ID, employee ID, email and phone;
OTPs expire and are redacted; bad input is refused (kinds, sizes, recipients, tokens),
replayed idempotency keys send nothing, rate limits answer 429."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker.notice_rooms import NOTICE
from storage.media import MediaRecord
from tests.admin_harness import AdminNode
from tests.storage_helpers import result_of

API = "/_broker/apps/v1"


class Scene:
    """mha (email domain mha.gov.in) with ``asha`` (employee E1, phone +911234) and
    ``ravi``; an app of mha that may send otp and alert."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha", email_domains=["mha.gov.in"])
        self.asha = self.member("asha", employee_id="E1", email="asha@mha.gov.in",
                                phone="+911234")
        self.ravi = self.member("ravi")
        status, app = node.api("POST", "/apps", node.root,
                               {"name": "Passport Seva", "organisation": "mha",
                                "kinds": ["otp", "alert"]})
        assert status == 201, app
        self.app = app
        self.token = app["token"]

    def member(self, localpart: str, **place: str) -> str:
        user_id, _ = self.node.user(localpart)
        self.node.ok("PATCH", f"/users/{quote(user_id)}", {"organisation": "mha", **place})
        return user_id

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None) -> tuple[int, Any]:
        return self.node.local.call(method, f"{API}{path}", token or self.token, body,
                                    raw=raw)

    def send(self, to: Any = None, **fields: Any) -> tuple[int, Any]:
        body = {"to": self.asha if to is None else to, "kind": "alert",
                "body": "Your passport is ready", **fields}
        answer = self.call("POST", "/messages", body)
        self.settle()
        return answer

    def settle(self) -> None:
        """Let the sends in flight finish (each waits for group commits on the reactor)."""
        messages = self.node.node.apps.messages
        for _ in range(200):
            if not messages.in_flight:
                return
            self.node.local.advance(0)
        raise AssertionError("messages still in flight")

    def status(self, message_id: str) -> dict[str, Any]:
        status, answer = self.call("GET", f"/messages/{message_id}")
        assert status == 200, answer
        return dict(answer)

    def notices(self, who: str) -> list[dict[str, Any]]:
        """The app's messages in the joined rooms of ``who``'s initial sync."""
        status, body = self.node.client(who, "GET", "/sync")
        assert status == 200, body
        found = []
        for room in body["rooms"]["join"].values():
            found.extend(e for e in room["timeline"]["events"]
                         if e["type"] == "m.room.message" and NOTICE in e["content"])
        return found


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path) -> Iterator[Scene]:
    node = AdminNode(tmp_path, request.param)
    try:
        yield Scene(node)
    finally:
        node.close()


def test_a_message_reaches_the_recipient_from_the_apps_sender(scene: Scene) -> None:
    status, answer = scene.send()
    assert status == 200, answer
    [event] = scene.notices("asha")
    assert event["sender"] == scene.app["sender"]
    assert event["content"]["msgtype"] == "m.text"
    assert event["content"]["body"] == "Your passport is ready"
    assert event["content"][NOTICE] == {"kind": "alert", "id": answer["message_id"]}


def test_the_recipient_cannot_post_into_the_apps_room(scene: Scene) -> None:
    scene.send()
    status, body = scene.node.client("asha", "GET", "/joined_rooms")
    [room_id] = body["joined_rooms"]
    status, _ = scene.node.client("asha", "PUT",
                                  f"/rooms/{quote(room_id)}/send/m.room.message/1",
                                  {"msgtype": "m.text", "body": "reply"})
    assert status == 403


def test_messages_to_one_recipient_share_one_room(scene: Scene) -> None:
    scene.send()
    scene.send(body="second")
    rooms = scene.node.client("asha", "GET", "/joined_rooms")[1]["joined_rooms"]
    assert len(rooms) == 1
    assert [e["content"]["body"] for e in scene.notices("asha")] == [
        "Your passport is ready", "second"]


def test_a_recipient_who_left_the_apps_room_is_brought_back_by_its_next_message(
        scene: Scene) -> None:
    scene.send()
    [room_id] = scene.node.client("asha", "GET", "/joined_rooms")[1]["joined_rooms"]
    status, _ = scene.node.client("asha", "POST", f"/rooms/{quote(room_id)}/leave", {})
    assert status == 200
    assert scene.node.client("asha", "GET", "/joined_rooms")[1]["joined_rooms"] == []
    status, answer = scene.send(body="Your OTP is 112233", kind="otp")
    assert status == 200, answer
    assert scene.node.client("asha", "GET", "/joined_rooms")[1]["joined_rooms"] == [room_id]
    assert scene.notices("asha")[-1]["content"]["body"] == "Your OTP is 112233"


def test_the_status_is_queued_then_delivered_after_a_later_sync(scene: Scene) -> None:
    message_id = scene.send()[1]["message_id"]
    assert scene.status(message_id)["status"] == "queued"
    status, first = scene.node.client("asha", "GET", "/sync")
    scene.node.client("asha", "GET", f"/sync?since={first['next_batch']}&timeout=0")
    answer = scene.status(message_id)
    assert (answer["status"], answer["recipient"]) == ("delivered", scene.asha)
    assert answer["delivered_ts"] is not None


@pytest.mark.parametrize("to", [{"organisation": "mha", "employee_id": "E1"},
                                {"email": "asha@MHA.gov.in"}, {"phone": "+911234"}])
def test_a_recipient_may_be_named_by_employee_id_email_or_phone(scene: Scene,
                                                               to: dict[str, str]) -> None:
    status, answer = scene.send(to)
    assert status == 200, answer
    assert scene.status(answer["message_id"])["recipient"] == scene.asha


@pytest.mark.parametrize("to", ["@ghost:admin.test", {"organisation": "mha",
                                                       "employee_id": "E9"},
                                {"email": "nobody@mha.gov.in"}, {"phone": "+910000"},
                                "@someone:not-a-peer.test", "not a user id"])
def test_an_unknown_recipient_is_refused_at_once(scene: Scene, to: Any) -> None:
    status, body = scene.send(to)
    assert (status, body["errcode"], body["in.gov.broker.reason"]) == (
        404, "M_NOT_FOUND", "unknown_recipient")


def test_a_kind_the_app_may_not_send_is_refused(scene: Scene) -> None:
    status, body = scene.send(kind="notification")
    assert (status, body["errcode"], body["in.gov.broker.reason"]) == (
        403, "M_FORBIDDEN", "kind_not_allowed")
    assert scene.notices("asha") == []


@pytest.mark.parametrize("fields, errcode", [
    ({"kind": "sms"}, "M_INVALID_PARAM"),
    ({"body": 5}, "M_BAD_JSON"),
    ({"colour": "red"}, "M_BAD_JSON"),
    ({"ttl_s": 5}, "M_INVALID_PARAM"),
    ({"ttl_s": 100_000}, "M_INVALID_PARAM"),
    ({"to": {"email": "a@b", "phone": "1"}}, "M_BAD_JSON"),
    ({"attachments": [{"content_uri": "mxc://admin.test/nothing", "filename": "a.pdf",
                       "mimetype": "application/pdf"}]}, "M_INVALID_PARAM"),
    ({"tags": ["no_such_tag"]}, "M_INVALID_PARAM"),
])
def test_bad_messages_are_refused(scene: Scene, fields: dict[str, Any], errcode: str) -> None:
    status, body = scene.send(**fields)
    assert (status, body["errcode"]) == (400, errcode), body
    assert scene.notices("asha") == []


def test_an_oversized_message_is_refused_with_too_large(scene: Scene) -> None:
    status, body = scene.send(body="x" * 70_000)
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")


def test_a_wrong_token_sends_nothing(scene: Scene) -> None:
    status, body = scene.call("POST", "/messages", {"to": scene.asha, "kind": "alert",
                                                    "body": "x"}, token="brk_app_wrong")
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert scene.notices("asha") == []


def test_a_replayed_idempotency_key_answers_the_same_message_and_sends_nothing(
        scene: Scene) -> None:
    first = scene.send(idempotency_key="otp-42")[1]["message_id"]
    again = scene.send(idempotency_key="otp-42")[1]["message_id"]
    assert again == first
    assert len(scene.notices("asha")) == 1


def test_an_idempotency_key_is_kept_across_a_restart(scene: Scene) -> None:
    first = scene.send(idempotency_key="k")[1]["message_id"]
    node = scene.node.node  # what memory held is gone after a restart; the key is stored
    node.apps.messages.deps.recipients._found.clear()
    assert scene.send(idempotency_key="k")[1]["message_id"] == first
    assert len(scene.notices("asha")) == 1


def test_an_otp_expires_and_is_redacted(scene: Scene) -> None:
    message_id = scene.send(kind="otp", body="Your OTP is 493021", ttl_s=60)[1]["message_id"]
    assert scene.status(message_id)["expires_ts"] is not None
    scene.node.local.advance(61)
    node = scene.node.node  # what the node's jobs do when they run next:
    assert scene.node.local.settle(node.auto_delete.delete_due()) == 1  # redacted
    node.delivery.tracker.expire_due()  # and marked expired
    assert scene.status(message_id)["status"] == "expired"
    status, body = scene.node.client("asha", "GET", "/sync")
    [room] = body["rooms"]["join"].values()
    events = room["timeline"]["events"]
    assert "493021" not in json.dumps(body)
    assert [e["type"] for e in events][-2:] == ["m.room.message", "m.room.redaction"]
    assert events[-2]["content"] == {}


def test_html_is_sent_with_a_plain_text_body(scene: Scene) -> None:
    scene.send(body="<b>Ready</b> &amp; waiting", format="html")
    [event] = scene.notices("asha")
    content = event["content"]
    assert (content["body"], content["format"], content["formatted_body"]) == (
        "Ready & waiting", "org.matrix.custom.html", "<b>Ready</b> &amp; waiting")


def test_tags_are_written_as_the_message_tags_feature_writes_them(scene: Scene) -> None:
    scene.send(tags=["priority"])
    [event] = scene.notices("asha")
    assert event["content"]["in.gov.broker.tags"] == ["priority"]


def test_an_attachment_the_app_uploaded_is_sent_as_a_file(scene: Scene) -> None:
    result_of(scene.node.stores.media.store_media(MediaRecord(
        "Passport1", scene.app["sender"], "application/pdf", "passport.pdf", 9, "ab" * 32,
        0)))
    status, answer = scene.send(attachments=[{"content_uri": "mxc://admin.test/Passport1",
                                              "filename": "passport.pdf",
                                              "mimetype": "application/pdf"}])
    assert status == 200, answer
    [event] = scene.notices("asha")
    content = event["content"]
    assert (content["msgtype"], content["url"], content["filename"], content["body"]) == (
        "m.file", "mxc://admin.test/Passport1", "passport.pdf", "Your passport is ready")


def test_another_apps_message_status_is_not_found(scene: Scene) -> None:
    message_id = scene.send()[1]["message_id"]
    other = scene.node.api("POST", "/apps", scene.node.root,
                           {"name": "Other", "organisation": "mha"})[1]
    status, body = scene.call("GET", f"/messages/{message_id}", token=other["token"])
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


def test_too_many_messages_to_one_recipient_answer_429(scene: Scene) -> None:
    answers = [scene.send(body=f"m{i}")[0] for i in range(21)]
    assert answers[:20] == [200] * 20
    status, body = scene.send(body="one more")
    assert status == 429 and body["retry_after_ms"] > 0
    assert scene.send(to=scene.ravi)[0] == 200  # another recipient: a bucket of its own


def test_an_app_past_its_own_rate_limit_answers_429(tmp_path: Path) -> None:
    node = AdminNode(tmp_path, "sqlite", config={"rate_limits": {
        "enabled": True, "app_messages": {"per_second": 0.01, "burst": 3}}})
    try:
        app = Scene(node)
        answers = [app.call("GET", "/app") for _ in range(4)]
        assert [status for status, _ in answers] == [200, 200, 200, 429]
        assert answers[-1][1]["retry_after_ms"] > 0
    finally:
        node.close()


def test_a_deactivated_recipient_is_unknown_at_once(scene: Scene) -> None:
    assert scene.send()[0] == 200  # the recipient is known (and kept in memory)
    scene.node.ok("POST", f"/users/{quote(scene.asha)}/deactivate", {})
    status, body = scene.send()
    assert (status, body["in.gov.broker.reason"]) == (404, "unknown_recipient")


def test_the_separation_rules_apply_as_to_an_invite_by_the_sender(scene: Scene) -> None:
    """A recipient who takes no invites from the app's sender (MSC4155) gets nothing."""
    path = f"/user/{quote(scene.asha)}/account_data/m.invite_permission_config"
    assert scene.node.client("asha", "PUT", path,
                             {"blocked_users": [scene.app["sender"]]})[0] == 200
    status, body = scene.send()
    assert (status, body["in.gov.broker.reason"]) == (403, "invite_blocked")
    assert scene.notices("asha") == []
    assert scene.send(to=scene.ravi)[0] == 200
