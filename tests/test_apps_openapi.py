"""The application API answers as docs/api/broker-apps.openapi.yaml says, on both engines:
each example request (by the scene's app, see tests/test_apps_messages.py) gets a documented
status whose answer matches the document's schema, a request the document refuses is refused
by the server too, every operation is exercised, and every ``/_broker/apps`` route the node
serves is in the document."""

from __future__ import annotations

from typing import Any

import pytest

from tests.openapi_check import OpenApiDocument
from tests.test_apps_messages import API, Scene, scene

__all__ = ["scene"]

DOC = OpenApiDocument("broker-apps.openapi.yaml")

EXAMPLES: list[tuple[str, str, Any]] = [
    ("GET", "/app", None),
    ("POST", "/messages", {"to": "{asha}", "kind": "alert", "body": "Ready"}),
    ("POST", "/messages", {"to": {"organisation": "mha", "employee_id": "E1"},
                           "kind": "otp", "body": "OTP 1234", "ttl_s": 120,
                           "idempotency_key": "k1", "tags": ["priority"]}),
    ("POST", "/messages", {"to": {"email": "asha@mha.gov.in"}, "kind": "alert",
                           "body": "<b>Ready</b>", "format": "html"}),
    ("POST", "/messages", {"to": "@ghost:admin.test", "kind": "alert", "body": "x"}),
    ("POST", "/messages", {"to": "{asha}", "kind": "notification", "body": "x"}),
    ("POST", "/messages", {"to": "{asha}", "kind": "sms", "body": "x"}),
    ("POST", "/messages", {"to": "{asha}", "kind": "otp", "body": "x", "ttl_s": 1}),
    ("POST", "/messages", {"to": "{asha}", "kind": "alert", "body": "x", "colour": 1}),
    ("POST", "/messages", {"to": {"phone": "+911234", "email": "a@b"}, "kind": "alert",
                           "body": "x"}),
    ("POST", "/messages", {"kind": "alert", "body": "x"}),
    ("GET", "/messages/{message}", None),
    ("GET", "/messages/nothing", None),
    ("POST", "/groups", {"name": "Office", "members": ["{asha}", {"phone": "+911234"}]}),
    ("POST", "/groups", {"name": "Office", "members": ["@ghost:admin.test"]}),
    ("POST", "/groups", {"name": "Office", "members": [{"phone": 5}]}),
    ("POST", "/groups", {"name": ""}),
    ("GET", "/groups", None),
    ("GET", "/groups/{group}", None),
    ("GET", "/groups/nothing", None),
    ("PUT", "/groups/{group}/members", {"member": {"organisation": "mha", "employee_id": "E1"}}),
    ("PUT", "/groups/{group}/members", {"member": "@ghost:admin.test"}),
    ("PUT", "/groups/{group}/members", {"who": "x"}),
    ("PUT", "/groups/{group}/members/{asha}", None),
    ("PUT", "/groups/nothing/members/{asha}", None),
    ("DELETE", "/groups/{group}/members/{ravi}", None),
    ("DELETE", "/groups/{group}/members/{asha}", None),
    ("POST", "/groups/{group}/messages", {"body": "Office closed", "format": "plain"}),
    ("POST", "/groups/{group}/messages", {"body": ""}),
    ("POST", "/groups/nothing/messages", {"body": "x"}),
]


def _fill(value: Any, scene: Scene, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, text in names.items():
            value = value.replace(f"{{{name}}}", text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, scene, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, scene, names) for v in value]
    return value


@pytest.mark.parametrize("method, path, body", EXAMPLES,
                         ids=[f"{m}-{p}-{i}" for i, (m, p, _) in enumerate(EXAMPLES)])
def test_the_server_answers_as_the_document_says(scene: Scene, method: str, path: str,
                                                  body: Any) -> None:
    message_id = scene.send()[1]["message_id"]
    group = scene.call("POST", "/groups", {"name": "G", "members": [scene.ravi]})[1]
    names = {"asha": scene.asha, "ravi": scene.ravi, "message": message_id,
             "group": group["group_id"]}
    path, body = _fill(path, scene, names), _fill(body, scene, names)
    status, answer = scene.call(method, path, body)
    scene.settle()
    DOC.check_answer(method, f"{API}{path}", status, answer)
    if not DOC.request_allowed(method, f"{API}{path}", body):
        assert status == 400, f"the document refuses this request; the server answered {status}"


def test_every_operation_is_exercised() -> None:
    exercised = {(m, DOC.operation(m, f"{API}{p}")[0]) for m, p, _ in EXAMPLES}
    assert DOC.operations() - exercised == {("POST", "/_broker/apps/v1/media")}  # a thread


def test_every_operation_answers_401_as_documented_without_a_token(scene: Scene) -> None:
    for template, item in DOC.document["paths"].items():
        for method in (m for m in item if m != "parameters"):
            status, answer = scene.node.local.call(method.upper(), template, None)
            assert status == 401, (method, template)
            DOC.check_answer(method.upper(), template, status, answer)


def test_every_application_route_is_in_the_document(scene: Scene) -> None:
    DOC.check_routes(scene.node.node.router.routes(), "/_broker/apps")


def test_the_document_is_openapi_3_1_and_every_operation_loads() -> None:
    DOC.check_loads_in_schemathesis()
