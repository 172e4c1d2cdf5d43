"""Generated requests to every operation of docs/api/broker-client.openapi.yaml (schemathesis,
derandomized), on both engines, with a real SMTP server on loopback: every answer is one the
document lists, with the shape it gives, and none is a server error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NotSet

from tests.email_harness import EmailScene, make_scene
from tests.openapi_check import request_target
from tests.smtp_server import SmtpServer
from tests.test_broker_client_openapi import DOC

OPERATIONS = [result.ok() for result in
              schemathesis.openapi.from_dict(DOC.document).get_all_operations()]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmailScene]:
    server = SmtpServer()
    made = make_scene(tmp_path_factory.mktemp("fuzz"), request.param, server)
    try:
        yield made
    finally:
        made.admin.close()
        server.stop()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[o.label for o in OPERATIONS])
def test_every_answer_to_a_generated_request_is_documented(fuzzed: EmailScene,
                                                           operation: Any) -> None:
    @settings(max_examples=15, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def check(case: Any) -> None:
        raw = None if isinstance(case.body, NotSet) else json.dumps(case.body).encode()
        status, answer = fuzzed.admin.local.call(case.method, request_target(case),
                                                 fuzzed.admin.tokens["alice"], raw=raw)
        assert status < 500 or status == 502, answer
        DOC.check_answer(case.method, case.formatted_path, status, answer)

    check()
