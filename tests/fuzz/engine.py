"""Schema-driven fuzz of one Client-Server operation: generate, send, classify.

For each operation of the bundled spec, schemathesis generates requests (positive data, negative
data, and both again with the account's own user/room/device... in the path) and Hypothesis
draws a fixed number of them (``budget``), derandomized so that a run is reproducible; then the
operation's table of hostile requests (:mod:`tests.fuzz.hostile`) is sent.  Every answer is
classified (:mod:`tests.fuzz.classify`); a failure keeps the request, the answer and the node's
traceback line.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.transport import Response

from tests.fuzz.classify import GATING, classify, excerpt
from tests.fuzz.hostile import HostileRequest, hostile_requests
from tests.fuzz.spec_bundle import SpecOperation
from tests.fuzz.target import FuzzTarget, traceback_line

BUDGET_ENV = "BROKER_FUZZ_EXAMPLES"
CI_BUDGET = 25
REQUEST_TIMEOUT = 15.0
# Long-poll arguments (/sync's timeout, media's timeout_ms): a large generated value is a
# legitimate wait, not a hang, so numeric values are capped to this many milliseconds.
LONG_POLL_ARGUMENTS = ("timeout", "timeout_ms")
LONG_POLL_CAP_MS = 500
SESSION_ENDING = {"logout", "logout_all", "deactivateAccount", "changePassword",
                  "deleteDevice", "deleteDevices"}
# A success of these may take the account out of its room or its power in it: the fuzz goes on
# in a new room.
ROOM_CHANGING = {"leaveRoom", "forgetRoom", "kick", "ban", "upgradeRoom", "setRoomStateWithKey"}


def budget(argument: str | None = None) -> int:
    """Generated requests per operation: ``argument``, else ``$BROKER_FUZZ_EXAMPLES``, else
    the CI budget."""
    return int(argument or os.environ.get(BUDGET_ENV) or CI_BUDGET)


@dataclass(frozen=True)
class Failure:
    operation: str
    kind: str
    status: int | None
    request: str
    answer: str
    traceback: str

    @property
    def gating(self) -> bool:
        return self.kind in GATING

    def describe(self) -> str:
        status = self.status if self.status is not None else "-"
        line = f"{self.operation} [{self.kind}] {status}: {self.request} -> {self.answer}"
        return line + (f"\n    node: {self.traceback}" if self.traceback else "")


@dataclass
class OperationReport:
    operation: SpecOperation
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    def distinct(self) -> list[Failure]:
        """One failure per (kind, status, traceback line): the same defect reached by many
        generated inputs is listed once, with its first input."""
        seen: dict[tuple[str, int | None, str], Failure] = {}
        for failure in self.failures:
            seen.setdefault((failure.kind, failure.status, failure.traceback), failure)
        return list(seen.values())


def describe_case(case: Case) -> str:
    parts = [case.formatted_path]
    if case.query:
        parts.append("?" + excerpt(case.query, 160))
    if case.body is not None and type(case.body).__name__ != "NotSet":
        parts.append(" body=" + excerpt(case.body))
    return "".join(parts)


def cap_long_polls(case: Case) -> None:
    for name in LONG_POLL_ARGUMENTS:
        value = (case.query or {}).get(name)
        try:
            too_long = value is not None and int(value) > LONG_POLL_CAP_MS
        except (TypeError, ValueError):
            too_long = False
        if too_long:
            case.query[name] = LONG_POLL_CAP_MS


def strategies(schema_operation: Any, owned: dict[str, str], named: dict[str, str]) -> Any:
    """Positive and negative data: anywhere, aimed at the account's own resources, and (positive
    only) at the very things the account has set."""
    options = [schema_operation.as_strategy(GenerationMode.POSITIVE),
               schema_operation.as_strategy(GenerationMode.NEGATIVE)]
    if owned:
        options.append(schema_operation.as_strategy(GenerationMode.POSITIVE,
                                                    path_parameters=owned))
        options.append(schema_operation.as_strategy(GenerationMode.NEGATIVE,
                                                    path_parameters=owned))
    if named != owned:
        options.append(schema_operation.as_strategy(GenerationMode.POSITIVE,
                                                    path_parameters=named))
    return st.one_of(options)


class OperationFuzz:
    """Sends ``examples`` generated requests and the hostile table to one operation and
    classifies the answers."""

    def __init__(self, schema_operation: Any, spec: SpecOperation, target: FuzzTarget) -> None:
        self.schema_operation = schema_operation
        self.spec = spec
        self.target = target
        self.report = OperationReport(spec)

    def run(self, examples: int, hostile: bool = True) -> OperationReport:
        started = time.monotonic()

        @hypothesis.settings(max_examples=examples, derandomize=True, database=None,
                             deadline=None, phases=[hypothesis.Phase.generate],
                             suppress_health_check=list(hypothesis.HealthCheck),
                             print_blob=False)
        @hypothesis.given(st.data())
        def generated(data: Any) -> None:
            names = self.spec.path_parameters
            self.send_case(data.draw(strategies(
                self.schema_operation, self.target.owned_path_parameters(names),
                self.target.named_path_parameters(names))))

        generated()
        if hostile:
            owned = self.target.owned_path_parameters(self.spec.path_parameters)
            for request in hostile_requests(self.spec, self.schema_operation.definition.raw,
                                            owned):
                self.send_hostile(request)
        self.report.seconds = time.monotonic() - started
        return self.report

    def send_case(self, case: Case) -> None:
        cap_long_polls(case)
        self.exchange(describe_case(case), case, False, lambda: case.call(
            base_url=self.target.base_url, session=self.target.session,
            headers=self.target.headers(), timeout=REQUEST_TIMEOUT))

    def send_hostile(self, request: HostileRequest) -> None:
        headers = self.target.headers()
        if request.body is not None:
            headers["Content-Type"] = "application/json"

        def call() -> Response:
            return Response.from_requests(self.target.session.request(
                request.method.upper(), self.target.base_url + request.url_path,
                data=request.body, headers=headers, timeout=REQUEST_TIMEOUT), verify=True)
        self.exchange(request.describe(), None, request.must_refuse, call)

    def exchange(self, described: str, case: Case | None, must_refuse: bool,
                 call: Callable[[], Response]) -> None:
        self.report.requests += 1
        self.target.new_log_text()
        try:
            response = call()
        except requests.Timeout:
            self.fail("hang", None, described, f"no answer in {REQUEST_TIMEOUT:.0f}s")
            return
        except requests.ConnectionError as error:
            self.fail("close", None, described, excerpt(str(error), 160))
            return
        self.report.statuses[response.status_code] += 1
        failure = classify(self.schema_operation, response, case, must_refuse)
        if failure is not None:
            self.fail(failure[0], response.status_code, described, failure[1])
        self.recover(response.status_code)

    def recover(self, status: int) -> None:
        """A new account after the session ended, a new room after the old one changed."""
        if self.spec.operation_id in SESSION_ENDING or status == 401:
            if not self.target.session_alive():
                self.target.new_account()
        if self.spec.operation_id in ROOM_CHANGING and status < 300:
            self.target.new_room()

    def fail(self, kind: str, status: int | None, described: str, answer: str) -> None:
        self.report.failures.append(Failure(
            self.spec.label, kind, status, described, answer,
            traceback_line(self.target.new_log_text())))
