"""Requests generated from docs/api/broker-admin.openapi.yaml (schemathesis, on Hypothesis)
against a node on each engine: whatever the document allows a client to send, every answer
has a documented status and matches the document's schema for it, and none is a server
error.  The node admin sends them, so they reach the services rather than stopping at the
permission check."""

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
from tests.test_admin_openapi import check_answer, document

OPERATIONS = [result.ok() for result in
              schemathesis.openapi.from_dict(document()).get_all_operations()]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminNode]:
    made = AdminNode(tmp_path_factory.mktemp("fuzz"), request.param)
    try:
        made.ministries("bob", "verifier")
        yield made
    finally:
        made.close()


@pytest.mark.parametrize("operation", OPERATIONS, ids=[o.label for o in OPERATIONS])
def test_every_answer_to_a_generated_request_is_documented(fuzzed: AdminNode,
                                                           operation: Any) -> None:
    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def check(case: Any) -> None:
        raw = None if isinstance(case.body, NotSet) else json.dumps(case.body).encode()
        status, answer = fuzzed.local.call(case.method, request_target(case), fuzzed.root, raw=raw)
        assert status < 500, answer
        check_answer(case.method, case.formatted_path, status, answer)

    check()


def test_the_fuzzed_node_still_has_an_intact_audit_log(fuzzed: AdminNode) -> None:
    from broker.admin.audit import verify

    found = fuzzed.local.run(verify(fuzzed.stores.audit, fuzzed.node.server_name,
                                    [fuzzed.node.signing_key]))
    assert found.ok and found.entries > 0

