"""What one answer of the node means: nothing wrong, or a failure of some kind.

Failure kinds (``GATING`` ones fail the test):
  5xx           the node answered 500-599
  hang          no answer within the request timeout
  close         the connection closed (or was reset) without a status line
  not-matrix    a 4xx whose body is not a Matrix error (a JSON object with a string errcode),
                other than a 401 of user-interactive authentication
  accepted      a 2xx to a hostile body that canonical JSON cannot carry (it must be refused)
  schema-2xx    a documented success answer that does not match the spec's response schema
  schema-4xx    a documented error answer that does not match the spec's schema (reported only)
  unimplemented 404/405 M_UNRECOGNIZED: the node does not serve the operation (reported only)
  undocumented  a status the spec does not list for the operation (reported only)
"""

from __future__ import annotations

import json
from typing import Any

from schemathesis import Case
from schemathesis.core.failures import Failure as SchemaFailure
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.openapi.checks import JsonSchemaError

from tests.fuzz.allowances import schema_allowance

GATING = frozenset({"5xx", "hang", "close", "not-matrix", "accepted", "schema-2xx"})
KINDS = ("5xx", "hang", "close", "not-matrix", "accepted", "schema-2xx", "schema-4xx",
         "unimplemented", "undocumented")


def excerpt(value: Any, limit: int = 240) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit})"


def classify(schema_operation: Any, response: Response, case: Case | None,
             must_refuse: bool = False) -> tuple[str, str] | None:
    """``(kind, what the answer was)`` for a failure, ``None`` for a good answer.
    ``must_refuse``: the request carried JSON the node must refuse."""
    status = response.status_code
    if status >= 500:
        return "5xx", excerpt(response.text)
    if 400 <= status < 500 and not (_is_matrix_error(response) or _is_auth_challenge(response)):
        return "not-matrix", excerpt(response.text)
    if must_refuse and status < 400:
        return "accepted", excerpt(response.text)
    if status in (404, 405) and _errcode(response) == "M_UNRECOGNIZED":
        return "unimplemented", excerpt(response.text)
    documented = {str(code) for code in (schema_operation.definition.raw.get("responses") or {})}
    if str(status) not in documented and "default" not in documented:
        return "undocumented", excerpt(response.text)
    return _schema_mismatch(schema_operation, response, case)


def _schema_mismatch(schema_operation: Any, response: Response,
                     case: Case | None) -> tuple[str, str] | None:
    try:
        schema_operation.validate_response(response, case=case)
    except FailureGroup as group:
        message = "; ".join(sorted({_failure_text(f) for f in group.exceptions}))
    except SchemaFailure as failure:
        message = _failure_text(failure)
    else:
        return None
    if schema_allowance(schema_operation.definition.raw.get("operationId", ""),
                        response.status_code, message):
        return None
    kind = "schema-2xx" if response.status_code < 300 else "schema-4xx"
    return kind, excerpt(message, 400)


def _failure_text(failure: BaseException) -> str:
    """Where and how the answer differs from the schema: the JSON path and the validator's
    message for a schema violation, the first line of anything else."""
    if isinstance(failure, JsonSchemaError):
        where = "/".join(str(part) for part in failure.instance_path) or "(root)"
        return f"at {where}: {excerpt(failure.validation_message, 200)}"
    text = str(failure)
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


def _json_object(response: Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _errcode(response: Response) -> str | None:
    errcode = _json_object(response).get("errcode")
    return errcode if isinstance(errcode, str) else None


def _is_matrix_error(response: Response) -> bool:
    return _errcode(response) is not None


def _is_auth_challenge(response: Response) -> bool:
    """A 401 of user-interactive authentication: the spec's answer is the flows to complete
    (``flows``, ``params``, ``session``), with an ``errcode`` only after a failed stage."""
    return response.status_code == 401 and isinstance(_json_object(response).get("flows"), list)
