"""The admin API answers as docs/api/broker-admin.openapi.yaml says, on both engines.

Each example below is a request to a fresh node (mha with mha.dm, and mea; ``bob`` is a
verifier of mha; ``nobody`` holds no role; ``carol``, verified for mha.dm, created a room,
``{room}`` in a path, sent a message into it and reported it (report 1) and the room
(report 2, resolved); mea publishes the image pack "flags"; the usage counted is written, so
``/statistics`` has rows).  A request the document allows must succeed with
a documented status; a request the document's schema refuses must be refused by the server
too; every answer must match the document's schema for its status.  Every operation of the
document is exercised, and every ``/_broker/admin`` route the node serves is in the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from storage.email_codes import CodeRow, RequestRow
from storage.media import MediaRecord
from tests.admin_harness import ADMIN, AdminNode
from tests.openapi_check import OpenApiDocument
from tests.storage_helpers import result_of

DOC = OpenApiDocument("broker-admin.openapi.yaml")
check_answer = DOC.check_answer
request_allowed = DOC.request_allowed


def document() -> dict[str, Any]:
    return DOC.document


# (caller, method, path, body): each runs on a fresh node with the scene above.
EXAMPLES: list[tuple[str, str, str, Any]] = [
    ("root", "GET", "/organisations", None),
    ("root", "GET", "/appservices", None),
    ("nobody", "GET", "/appservices", None),
    ("bob", "GET", "/organisations", None),
    ("nobody", "GET", "/organisations", None),
    ("root", "POST", "/organisations", {"id": "moe", "name": "Education",
                                        "names": {"hi": "शिक्षा"}, "email_domains": ["moe.gov.in"],
                                        "settings": {"queue": True}}),
    ("root", "POST", "/organisations", {"id": "mha.fire", "name": "Fire", "parent": "mha"}),
    ("root", "POST", "/organisations", {"id": "mha", "name": "Again"}),
    ("root", "POST", "/organisations", {"id": "x", "name": "X", "colour": "red"}),
    ("root", "POST", "/organisations", {"id": "Not An Id", "name": "X"}),
    ("root", "POST", "/organisations", {"name": "X"}),
    ("bob", "POST", "/organisations", {"id": "x", "name": "X"}),
    ("root", "GET", "/organisations/mha", None),
    ("root", "GET", "/organisations/nowhere", None),
    ("nobody", "GET", "/organisations/mha", None),
    ("root", "PATCH", "/organisations/mha.dm", {"name": "DM", "parent": None}),
    ("root", "PATCH", "/organisations/mha.dm", {"settings": {"verify": "queue"}}),
    ("root", "PATCH", "/organisations/mha", {"parent": "mha.dm"}),
    ("root", "PATCH", "/organisations/mha", {"id": "renamed"}),
    ("root", "PATCH", "/organisations/nowhere", {"name": "X"}),
    ("bob", "PATCH", "/organisations/mha", {"name": "X"}),
    ("root", "DELETE", "/organisations/mea", None),
    ("root", "DELETE", "/organisations/mha", None),
    ("root", "DELETE", "/organisations/nowhere", None),
    ("bob", "DELETE", "/organisations/mea", None),
    ("root", "GET", "/users/@bob:admin.test/roles", None),
    ("nobody", "GET", "/users/@bob:admin.test/roles", None),
    ("root", "GET", "/users/@ghost:admin.test/roles", None),
    ("root", "PUT", "/users/@bob:admin.test/roles", {"roles": [
        {"role": "auditor"}, {"role": "broadcaster", "organisation": "mea"}]}),
    ("root", "PUT", "/users/@bob:admin.test/roles", {"roles": []}),
    ("root", "PUT", "/users/@bob:admin.test/roles", {"roles": [{"role": "emperor"}]}),
    ("root", "PUT", "/users/@bob:admin.test/roles", {"roles": [{"role": "auditor",
                                                                 "extra": 1}]}),
    ("root", "PUT", "/users/@ghost:admin.test/roles", {"roles": []}),
    ("bob", "PUT", "/users/@bob:admin.test/roles", {"roles": [{"role": "node_admin"}]}),
    ("root", "GET", "/statistics", None),
    ("root", "GET", "/statistics?organisation=mha&from=2025-12-01&to=2026-01-01&format=json",
     None),
    ("root", "GET", "/statistics?from=2026-01-02&to=2026-01-01", None),
    ("root", "GET", "/statistics?from=yesterday", None),
    ("root", "GET", "/statistics?format=xml", None),
    ("root", "GET", "/statistics?organisation=nowhere", None),
    ("bob", "GET", "/statistics", None),
    ("nobody", "GET", "/statistics", None),
    ("root", "GET", "/audit", None),
    ("root", "GET", "/audit?from=1&limit=2", None),
    ("root", "GET", "/audit?limit=abc", None),
    ("bob", "GET", "/audit", None),
    ("root", "GET", "/users", None),
    ("root", "GET", "/users?organisation=mha&class=verified&q=CAR&limit=5", None),
    ("root", "GET", "/users?from=@bob:admin.test&limit=1", None),
    ("root", "GET", "/users?class=royal", None),
    ("root", "GET", "/users?organisation=nowhere", None),
    ("bob", "GET", "/users", None),
    ("nobody", "GET", "/users", None),
    ("root", "POST", "/users", {"localpart": "dave", "password": "a long password",
                                "displayname": "Dave", "organisation": "mha",
                                "designation": "Clerk", "employee_id": "E-1",
                                "email": "dave@mha.gov.in", "phone": "+91 11 2309",
                                "class": "verified", "basis": "document"}),
    ("root", "POST", "/users", {"localpart": "dave"}),
    ("root", "POST", "/users", {"localpart": "bob"}),
    ("root", "POST", "/users", {"localpart": "Dave"}),
    ("root", "POST", "/users", {"localpart": "dave", "colour": "red"}),
    ("root", "POST", "/users", {"localpart": "dave", "class": "royal"}),
    ("root", "POST", "/users", {"localpart": "dave", "email": "nobody"}),
    ("bob", "POST", "/users", {"localpart": "dave", "organisation": "mha"}),
    ("root", "GET", "/users/@carol:admin.test", None),
    ("root", "GET", "/users/@ghost:admin.test", None),
    ("nobody", "GET", "/users/@carol:admin.test", None),
    ("bob", "GET", "/users/@carol:admin.test", None),
    ("root", "PATCH", "/users/@carol:admin.test", {"designation": "Under Secretary",
                                                   "phone": None}),
    ("root", "PATCH", "/users/@bob:admin.test", {"organisation": "mea"}),
    ("root", "PATCH", "/users/@carol:admin.test", {"employee_id": 5}),
    ("root", "PATCH", "/users/@ghost:admin.test", {"designation": "X"}),
    ("bob", "PATCH", "/users/@carol:admin.test", {"designation": "X"}),
    ("root", "POST", "/users/@nobody:admin.test/deactivate", {}),
    ("root", "POST", "/users/@ghost:admin.test/deactivate", {}),
    ("root", "POST", "/users/@root:admin.test/deactivate", {}),
    ("bob", "POST", "/users/@carol:admin.test/deactivate", {}),
    ("root", "GET", "/users/@carol:admin.test/verification", None),
    ("root", "GET", "/users/@ghost:admin.test/verification", None),
    ("nobody", "GET", "/users/@carol:admin.test/verification", None),
    ("root", "POST", "/users/@bob:admin.test/verification", {
        "organisation": "mha", "basis": "in_person", "expires_at": 4102444800000}),
    ("bob", "POST", "/users/@nobody:admin.test/verification", {"organisation": "mha.dm",
                                                                "basis": "document"}),
    ("bob", "POST", "/users/@nobody:admin.test/verification", {"organisation": "mea",
                                                                "basis": "document"}),
    ("root", "POST", "/users/@bob:admin.test/verification", {"organisation": "mha"}),
    ("root", "POST", "/users/@bob:admin.test/verification", {"organisation": "mha",
                                                             "basis": "hearsay"}),
    ("root", "POST", "/users/@bob:admin.test/verification", {"organisation": "nowhere",
                                                             "basis": "document"}),
    ("root", "POST", "/users/@bob:admin.test/verification", {"organisation": "mha",
                                                             "basis": "document",
                                                             "expires_at": 1}),
    ("root", "DELETE", "/users/@carol:admin.test/verification", None),
    ("root", "DELETE", "/users/@bob:admin.test/verification", None),
    ("bob", "DELETE", "/users/@carol:admin.test/verification", None),
    ("nobody", "DELETE", "/users/@carol:admin.test/verification", None),
    ("root", "GET", "/verification_requests", None),
    ("root", "GET", "/verification_requests?organisation=mha&state=pending&limit=1", None),
    ("root", "GET", "/verification_requests?state=maybe", None),
    ("root", "GET", "/verification_requests?organisation=nowhere", None),
    ("nobody", "GET", "/verification_requests", None),
    ("root", "POST", "/verification_requests/r1/approve", {"reason": "on the staff list",
                                                           "expires_at": 4102444800000}),
    ("root", "POST", "/verification_requests/r1/approve", {"colour": "red"}),
    ("root", "POST", "/verification_requests/r3/approve", {}),
    ("bob", "POST", "/verification_requests/r2/approve", {}),
    ("root", "POST", "/verification_requests/nope/approve", {}),
    ("root", "POST", "/verification_requests/r2/deny", {"reason": "not on the staff list"}),
    ("root", "POST", "/verification_requests/r2/deny", {"reason": 5}),
    ("root", "POST", "/verification_requests/r3/deny", {}),
    ("root", "POST", "/verification_requests/nope/deny", {}),
    ("root", "GET", "/rooms", None),
    ("root", "GET", "/rooms?organisation=mha&q=CHAT&limit=1", None),
    ("root", "GET", "/rooms?from=!a&limit=5", None),
    ("root", "GET", "/rooms?blocked=false", None),
    ("root", "GET", "/rooms?blocked=maybe", None),
    ("root", "GET", "/rooms?organisation=nowhere", None),
    ("root", "GET", "/rooms?limit=abc", None),
    ("bob", "GET", "/rooms", None),
    ("root", "GET", "/rooms/{room}", None),
    ("root", "GET", "/rooms/!nowhere", None),
    ("nobody", "GET", "/rooms/{room}", None),
    ("root", "POST", "/rooms/{room}/shutdown", {"reason": "Spam"}),
    ("root", "POST", "/rooms/{room}/shutdown", {}),
    ("root", "POST", "/rooms/{room}/shutdown", {"purge": True}),
    ("root", "POST", "/rooms/{room}/shutdown", {"reason": 5}),
    ("root", "POST", "/rooms/!nowhere/shutdown", {}),
    ("bob", "POST", "/rooms/{room}/shutdown", {}),
    ("root", "GET", "/reports", None),
    ("root", "GET", "/reports?state=open&room_id={room}&from=5&limit=2", None),
    ("root", "GET", "/reports?state=pending", None),
    ("bob", "GET", "/reports", None),
    ("root", "GET", "/reports/1", None),
    ("root", "GET", "/reports/1?content=true", None),
    ("root", "GET", "/reports/99", None),
    ("root", "GET", "/reports/abc", None),
    ("nobody", "GET", "/reports/1", None),
    ("root", "POST", "/reports/1/resolve", {"resolution": "User warned"}),
    ("root", "POST", "/reports/1/resolve", {}),
    ("root", "POST", "/reports/2/resolve", {}),
    ("root", "POST", "/reports/1/resolve", {"verdict": "x"}),
    ("root", "POST", "/reports/99/resolve", {}),
    ("bob", "POST", "/reports/1/resolve", {}),
    ("root", "GET", "/policy", None),
    ("bob", "GET", "/policy", None),
    ("root", "PATCH", "/organisations/mha", {"settings": {"profile_visibility": {
        "public": [], "verified_this_node": ["displayname", "designation"]}}}),
    ("root", "PATCH", "/organisations/mha", {"settings": {"profile_visibility": {
        "public": ["shoe_size"]}}}),
    ("root", "GET", "/organisations/mha/image_packs", None),
    ("root", "GET", "/organisations/mea/image_packs", None),
    ("root", "GET", "/organisations/nowhere/image_packs", None),
    ("nobody", "GET", "/organisations/mea/image_packs", None),
    ("root", "GET", "/organisations/mea/image_packs/flags", None),
    ("root", "GET", "/organisations/mea/image_packs/other", None),
    ("root", "PUT", "/organisations/mha/image_packs/official",
     {"images": {"namaste": {"url": "mxc://admin.test/Gimoji0", "usage": ["emoticon"]}},
      "pack": {"display_name": "MHA"}}),
    ("root", "PUT", "/organisations/mea/image_packs/flags",
     {"images": {"flag": {"url": "mxc://admin.test/Gimoji0"}}}),
    ("root", "PUT", "/organisations/mha/image_packs/official",
     {"images": {"x": {"url": "mxc://elsewhere.test/abcdef"}}}),
    ("root", "PUT", "/organisations/mha/image_packs/official",
     {"images": {"x": {"url": "mxc://admin.test/Gimoji0"}}, "colour": "red"}),
    ("root", "PUT", "/organisations/mha/image_packs/official", {"images": {}}),
    ("root", "PUT", "/organisations/nowhere/image_packs/official",
     {"images": {"x": {"url": "mxc://admin.test/Gimoji0"}}}),
    ("bob", "PUT", "/organisations/mea/image_packs/flags",
     {"images": {"x": {"url": "mxc://admin.test/Gimoji0"}}}),
    ("root", "DELETE", "/organisations/mea/image_packs/flags", None),
    ("root", "DELETE", "/organisations/mha/image_packs/none", None),
    ("root", "POST", "/users/@carol:admin.test/renew", {}),
    ("root", "POST", "/users/@carol:admin.test/renew", {"expires_at": 4_102_444_800_000}),
    ("root", "POST", "/users/@carol:admin.test/renew", {"expires_at": 1}),
    ("root", "POST", "/users/@carol:admin.test/renew", {"expires_at": "soon"}),
    ("root", "POST", "/users/@ghost:admin.test/renew", {}),
    ("nobody", "POST", "/users/@carol:admin.test/renew", {}),
    ("root", "POST", "/apps", {"name": "Passport Seva", "organisation": "mha",
                               "kinds": ["otp", "alert"]}),
    ("root", "POST", "/apps", {"name": "X", "organisation": "mha", "kinds": ["sms"]}),
    ("root", "POST", "/apps", {"name": "X", "organisation": "nowhere"}),
    ("root", "POST", "/apps", {"name": "X", "organisation": "mha",
                               "callback_url": "http://10.0.0.1/hook"}),
    ("root", "POST", "/apps", {"name": "X", "organisation": "mha", "colour": "red"}),
    ("bob", "POST", "/apps", {"name": "X", "organisation": "mha"}),
    ("root", "GET", "/apps", None),
    ("root", "GET", "/apps?organisation=mha", None),
    ("bob", "GET", "/apps", None),
    ("root", "GET", "/apps/{app}", None),
    ("root", "GET", "/apps/nope", None),
    ("nobody", "GET", "/apps/{app}", None),
    ("root", "PATCH", "/apps/{app}", {"kinds": ["alert"], "callback_url": None}),
    ("root", "PATCH", "/apps/{app}", {"kinds": ["sms"]}),
    ("root", "PATCH", "/apps/{app}", {"callback_url": "http://127.0.0.1/x"}),
    ("root", "PATCH", "/apps/{app}", {"name": "Renamed"}),
    ("root", "PATCH", "/apps/nope", {"kinds": ["alert"]}),
    ("root", "POST", "/apps/{app}/token", None),
    ("root", "POST", "/apps/nope/token", None),
    ("root", "DELETE", "/apps/{app}", None),
    ("root", "DELETE", "/apps/nope", None),
    ("root", "POST", "/broadcasts", {"organisation": "mha", "body": "Closed on Friday"}),
    ("root", "POST", "/broadcasts", {"organisation": "mha", "body": "<b>x</b>",
                                     "format": "html", "audience": {"organisations": ["mha.dm"]}}),
    ("root", "POST", "/broadcasts", {"organisation": "mha", "body": "x",
                                     "audience": {"organisations": ["mea"]}}),
    ("root", "POST", "/broadcasts", {"organisation": "mha", "body": "x",
                                     "audience": {"users": ["@carol:admin.test", 1]}}),
    ("root", "POST", "/broadcasts", {"organisation": "mha", "body": ""}),
    ("bob", "POST", "/broadcasts", {"organisation": "mha", "body": "x"}),
    ("root", "GET", "/broadcasts", None),
    ("root", "GET", "/broadcasts?organisation=mha&limit=1", None),
    ("root", "GET", "/broadcasts?before_ts=x", None),
    ("nobody", "GET", "/broadcasts", None),
    ("root", "GET", "/broadcasts/{broadcast}", None),
    ("root", "GET", "/broadcasts/nope", None),
    ("bob", "GET", "/broadcasts/{broadcast}", None),
]


def _queue(made: AdminNode) -> None:
    """Requests r1 (nobody for mha) and r2 (carol for mea) pending, r3 denied."""
    store, now = made.stores.email_codes, made.node.clock.time_ms()
    for request_id, user, org in (("r1", "nobody", "mha"), ("r2", "carol", "mea"),
                                  ("r3", "nobody", "mha.dm")):
        user_id, sid = f"@{user}:admin.test", f"sid-{request_id}"
        address = f"{user}@{org}.gov.in"
        result_of(store.add(CodeRow(sid, "verification", user_id, address, org, "0" * 64,
                                    now, now + 900_000), made.last_entry_draft()))
        result_of(store.queue_request(sid, RequestRow(request_id, user_id, org, address,
                                                      "pending", now),
                                      made.last_entry_draft()))
    result_of(store.decide("r3", "denied", made.root_id, now, None, made.last_entry_draft()))


def _reported_room(made: AdminNode) -> str:
    """carol's room "Chat", her message in it reported (report 1), the room reported and
    that report resolved (report 2)."""
    room_id = str(made.client("carol", "POST", "/createRoom", {"name": "Chat"})[1]["room_id"])
    room = quote(room_id)
    event_id = made.client("carol", "PUT", f"/rooms/{room}/send/m.room.message/1",
                           {"msgtype": "m.text", "body": "hi"})[1]["event_id"]
    made.client("carol", "POST", f"/rooms/{room}/report/{quote(event_id)}",
                {"reason": "abuse"})
    made.client("carol", "POST", f"/rooms/{room}/report", {})
    made.ok("POST", "/reports/2/resolve", {"resolution": "No action"})
    return room_id


def _published_pack(made: AdminNode) -> None:
    """An image in the media store (Gimoji0) and mea's pack "flags" of it."""
    result_of(made.stores.media.store_media(MediaRecord(
        "Gimoji0", made.root_id, "image/png", "flag.png", 72, "ab" * 32, 0)))
    made.ok("PUT", "/organisations/mea/image_packs/flags",
            {"images": {"flag": {"url": "mxc://admin.test/Gimoji0"}}}, status=201)


class Scene(AdminNode):
    room_id = ""  # carol's reported room
    app_id = ""  # mha's app "Pension"
    broadcast_id = ""  # mha's broadcast to carol


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path) -> Iterator[Scene]:
    made = Scene(tmp_path, request.param,
                 config={"account_validity": {"enabled": True, "period": "365d"}})
    try:
        made.ministries("bob", "verifier")
        made.user("nobody")
        made.user("carol")
        made.ok("POST", "/users/@carol:admin.test/verification",
                {"organisation": "mha.dm", "basis": "document"})
        _queue(made)
        made.room_id = _reported_room(made)
        _published_pack(made)
        made.app_id = made.ok("POST", "/apps", {"name": "Pension", "organisation": "mha"},
                              status=201)["app_id"]
        made.broadcast_id = made.ok("POST", "/broadcasts", {
            "organisation": "mha", "body": "Welcome"}, status=201)["broadcast_id"]
        made.local.run(made.node.statistics.flush())  # rows for /statistics to answer
        yield made
    finally:
        made.close()


@pytest.mark.parametrize("caller, method, path, body", EXAMPLES,
                         ids=[f"{c}-{m}-{p}-{i}" for i, (c, m, p, _) in enumerate(EXAMPLES)])
def test_the_server_answers_as_the_document_says(scene: Scene, caller: str, method: str,
                                                  path: str, body: Any) -> None:
    token = scene.root if caller == "root" else scene.tokens[caller]
    path = path.replace("{room}", scene.room_id).replace("{app}", scene.app_id).replace(
        "{broadcast}", scene.broadcast_id)
    status, answer = scene.api(method, path, token, body)
    check_answer(method, f"{ADMIN}{path}", status, answer)
    if not (request_allowed(method, f"{ADMIN}{path}", body)
            and DOC.query_allowed(method, f"{ADMIN}{path}")):
        assert status == 400, f"the document refuses this request; the server answered {status}"


def test_every_operation_of_the_document_is_exercised_and_succeeds() -> None:
    documented = DOC.operations()
    exercised = {(m, DOC.operation(m, f"{ADMIN}{p}")[0]) for c, m, p, b in EXAMPLES
                 if c == "root" and request_allowed(m, f"{ADMIN}{p}", b)}
    assert documented == exercised


def test_every_operation_answers_401_as_documented_without_a_token(scene: AdminNode) -> None:
    for template, item in document()["paths"].items():
        path = template.replace("{org_id}", "mha").replace("{user_id}", "@bob:admin.test")
        for method in (m for m in item if m != "parameters"):
            status, answer = scene.local.call(method.upper(), path, None)
            assert status == 401, (method, path)
            check_answer(method.upper(), path, status, answer)


def test_every_admin_route_is_in_the_document(scene: AdminNode) -> None:
    DOC.check_routes(scene.node.router.routes(), "/_broker/admin")


def test_the_document_is_openapi_3_1_and_every_operation_loads() -> None:
    DOC.check_loads_in_schemathesis()
