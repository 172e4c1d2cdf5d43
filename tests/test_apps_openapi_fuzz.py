"""Requests generated from docs/api/broker-apps.openapi.yaml (schemathesis, on Hypothesis)
against a node on each engine, by a registered app: whatever the document allows an app to
send, every answer has a documented status and matches the document's schema for it, and
none is a server error (the upload is left out: it writes on a thread the in-process node
does not run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NotSet

from tests.admin_harness import AdminNode
from tests.openapi_check import request_target
from tests.test_apps_messages import Scene
from tests.test_apps_openapi import DOC

OPERATIONS = [result.ok() for result in
              schemathesis.openapi.from_dict(DOC.document).get_all_operations()
              if not result.ok().path.endswith("/media")]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    node = AdminNode(tmp_path_factory.mktemp("apps_fuzz"), request.param,
                     config={"rate_limits": {"enabled": False}})
    try:
        yield Scene(node)
    finally:
        node.close()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[o.label for o in OPERATIONS])
def test_every_answer_to_a_generated_request_is_documented(fuzzed: Scene,
                                                           operation: Any) -> None:
    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def check(case: Any) -> None:
        raw = None if isinstance(case.body, NotSet) else json.dumps(case.body).encode()
        status, answer = fuzzed.node.local.call(case.method, request_target(case), fuzzed.token,
                                                raw=raw)
        fuzzed.settle()
        assert status < 500, answer
        DOC.check_answer(case.method, case.formatted_path, status, answer)

    check()
