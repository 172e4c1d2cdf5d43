"""Every operation of the Matrix specification's Client-Server API, fuzzed against a real node.

Requests come from the spec's own OpenAPI files (schemathesis: positive and negative data, aimed
at the fuzzing account's own resources too) and from a table of hostile inputs (JSON canonical
JSON cannot carry, text that is not UTF-8, NUL bytes, numbers past any column), on both engines,
derandomized: a run sends the same requests every time.  The CI budget is
``engine.CI_BUDGET`` generated requests per operation (``$BROKER_FUZZ_EXAMPLES`` to change it;
scripts/fuzz-client-api runs larger budgets).  One fuzz run per engine; each gating kind of
failure is one test over all of its answers, which prints the distinct failures of that kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from schemathesis.core.transport import Response

from tests.fuzz.classify import GATING, classify
from tests.fuzz.engine import budget
from tests.fuzz.runner import FuzzSummary, run_fuzz, schema_operations
from tests.fuzz.spec_bundle import missing_spec, operations, skip_requested
from tests.node_harness import node_on_engine


def _require_spec() -> None:
    reason = missing_spec()
    if reason is None:
        return
    if skip_requested():
        pytest.skip(reason)
    pytest.fail(reason)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed(request: Any, tmp_path_factory: Any) -> Iterator[FuzzSummary]:
    """The fuzz of a freshly started node on each engine."""
    _require_spec()
    workdir = Path(tmp_path_factory.mktemp(f"fuzz_{request.param}"))
    with node_on_engine(request.param, workdir) as node:
        yield run_fuzz(node.base_url, node.log_path, budget())


def test_every_operation_of_the_spec_is_fuzzed(fuzzed: FuzzSummary) -> None:
    reached = {report.operation.label for report in fuzzed.reports if report.requests}
    assert reached == {operation.label for operation in operations()}


@pytest.mark.parametrize("kind", sorted(GATING))
def test_no_answer_is_a_failure_of_a_gating_kind(fuzzed: FuzzSummary, kind: str) -> None:
    """5xx, hang, close, not-matrix, accepted, schema-2xx: see tests/fuzz/classify.py."""
    found = [f.describe() for f in fuzzed.distinct() if f.kind == kind]
    assert fuzzed.kind_counts()[kind] == 0, (
        f"{fuzzed.headline()}\n{len(found)} distinct {kind}:\n" + "\n".join(found))


# The oracle itself: what it calls a failure.

def _answer(status: int, body: bytes) -> Response:
    request = requests.Request("GET", "http://localhost/").prepare()
    return Response(status_code=status, headers={"content-type": ["application/json"]},
                    content=body, request=request, elapsed=0.0, verify=True)


@pytest.fixture(scope="module")
def spec_operations() -> dict[str, Any]:
    _require_spec()
    return schema_operations()


@pytest.fixture(scope="module")
def whoami(spec_operations: dict[str, Any]) -> Any:
    return spec_operations["GET /_matrix/client/v3/account/whoami"]


def test_oracle_calls_a_500_a_server_error(whoami: Any) -> None:
    assert classify(whoami, _answer(500, b'{"errcode":"M_UNKNOWN"}'), None)[0] == "5xx"


def test_oracle_calls_a_4xx_without_errcode_not_a_matrix_error(whoami: Any) -> None:
    assert classify(whoami, _answer(400, b"Bad Request"), None)[0] == "not-matrix"


def test_oracle_takes_a_401_with_flows_as_user_interactive_auth(
        spec_operations: dict[str, Any]) -> None:
    delete_devices = spec_operations["POST /_matrix/client/v3/delete_devices"]
    challenge = b'{"flows":[{"stages":["m.login.password"]}],"params":{},"session":"s"}'
    assert classify(delete_devices, _answer(401, challenge), None) is None


def test_oracle_calls_a_success_outside_the_schema_a_schema_failure(whoami: Any) -> None:
    assert classify(whoami, _answer(200, b'{"user_id":7}'), None)[0] == "schema-2xx"


def test_oracle_calls_a_success_to_refused_json_accepted(whoami: Any) -> None:
    answer = _answer(200, b'{"user_id":"@a:b"}')
    assert classify(whoami, answer, None, must_refuse=True)[0] == "accepted"
