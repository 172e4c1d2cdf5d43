"""The broker client API answers as docs/api/broker-client.openapi.yaml says, on both engines
(with a real SMTP server on loopback).

Each example is a request by ``alice`` to a fresh node of tests/email_harness.py (mha in
``auto``); ``{sid}`` and ``{code}`` stand for a code asked for in the scene.  A request the
document allows must succeed with a documented status, one its schema refuses must be
refused (400), every answer must match the schema for its status, every operation is
exercised, and every ``/_broker/client`` route the node serves is in the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.email_harness import EmailScene, make_scene
from tests.openapi_check import OpenApiDocument
from tests.smtp_server import SmtpServer, smtp_server

__all__ = ["smtp_server"]

DOC = OpenApiDocument("broker-client.openapi.yaml")
V = "/_broker/client/v1/verification"
P = "/_broker/client/v1/password/email/submitToken"

EXAMPLES: list[tuple[str, str, Any]] = [
    ("GET", V, None),
    ("POST", f"{V}/email/requestToken", {"organisation": "mha", "email": "al@mha.gov.in"}),
    ("POST", f"{V}/email/requestToken", {"organisation": "mha"}),
    ("POST", f"{V}/email/requestToken", {"organisation": "mha", "email": 5}),
    ("POST", f"{V}/email/requestToken", {"organisation": "mha", "email": "al@gmail.com"}),
    ("POST", f"{V}/email/requestToken", {"organisation": "moe", "email": "al@moe.gov.in"}),
    ("POST", f"{V}/email/requestToken", {"organisation": "Not An Id", "email": "a@mha.gov.in"}),
    ("POST", f"{V}/email/submitToken", {"sid": "{sid}", "token": "{code}"}),
    ("POST", f"{V}/email/submitToken", {"sid": "{sid}", "token": "000000x"}),
    ("POST", f"{V}/email/submitToken", {"sid": "nope", "token": "123456"}),
    ("POST", f"{V}/email/submitToken", {"sid": "{sid}"}),
    ("POST", P, {"sid": "{sid}", "client_secret": "s3cret", "token": "123456"}),
    ("POST", P, {"sid": "nope", "client_secret": "s3cret", "token": "123456"}),
    ("POST", P, {"sid": "nope", "client_secret": "s3cret"}),
    ("GET", "/_broker/client/v1/account_validity/renew?token=unknown", None),
]


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path, smtp_server: SmtpServer) -> Iterator[EmailScene]:
    made = make_scene(tmp_path, request.param, smtp_server)
    try:
        made.mode("mha", "auto")
        yield made
    finally:
        made.admin.close()


def _filled(body: Any, sid: str, code: str) -> Any:
    if not isinstance(body, dict):
        return body
    return {k: v.replace("{sid}", sid).replace("{code}", code) if isinstance(v, str) else v
            for k, v in body.items()}


@pytest.mark.parametrize("method, path, body", EXAMPLES,
                         ids=[f"{m}-{p.rsplit('/', 1)[-1]}-{i}"
                              for i, (m, p, _) in enumerate(EXAMPLES)])
def test_the_server_answers_as_the_document_says(scene: EmailScene, method: str, path: str,
                                                 body: Any) -> None:
    sid, code = scene.asked(email="alice@mha.gov.in")
    sent = _filled(body, sid, code)
    status, answer = scene.admin.local.call(method, path, scene.admin.tokens["alice"], sent)
    DOC.check_answer(method, path, status, answer)
    if not DOC.request_allowed(method, path, sent):
        assert status == 400, f"the document refuses this request; the server answered {status}"


def test_every_operation_of_the_document_is_exercised() -> None:
    assert {(m, DOC.operation(m, p)[0]) for m, p, _ in EXAMPLES} == DOC.operations()


def test_every_operation_answers_401_as_documented_without_a_token(scene: EmailScene) -> None:
    for method, path in DOC.operations() - DOC.open_operations():
        status, answer = scene.admin.local.call(method, path, None)
        assert status == 401, (method, path)
        DOC.check_answer(method, path, status, answer)


def test_every_broker_client_route_is_in_the_document(scene: EmailScene) -> None:
    DOC.check_routes(scene.node.router.routes(), "/_broker/client")


def test_the_document_is_openapi_3_1_and_every_operation_loads() -> None:
    DOC.check_loads_in_schemathesis()
