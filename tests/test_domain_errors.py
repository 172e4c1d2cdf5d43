"""The HTTP layer turns each kind of domain error into its status, keeping the error's Matrix
code: a conflict with what exists is 409 (the admin API's taken IDs, non-empty organisations,
reports resolved already), whatever code the service gave."""

from __future__ import annotations

import pytest

from broker import errors
from broker.admin.model import FieldConflict
from broker.http.errors import from_domain


@pytest.mark.parametrize("error, status, errcode", [
    (errors.InvalidInput("bad"), 400, "M_INVALID_PARAM"),
    (errors.MalformedContent("bad"), 400, "M_BAD_JSON"),
    (errors.Unauthenticated("who"), 401, "M_UNKNOWN_TOKEN"),
    (errors.Forbidden("no"), 403, "M_FORBIDDEN"),
    (errors.NotFound("gone"), 404, "M_NOT_FOUND"),
    (errors.Conflict("taken"), 409, "M_UNKNOWN"),
    (errors.Conflict("taken", errcode="M_USER_IN_USE"), 409, "M_USER_IN_USE"),
    (FieldConflict("id", "'mha' exists already"), 409, "M_UNKNOWN"),
    (errors.TooLarge("big"), 413, "M_TOO_LARGE"),
    (errors.LimitExceeded(1000), 429, "M_LIMIT_EXCEEDED"),
    (errors.Unavailable("down"), 502, "M_UNKNOWN"),
    (errors.TimedOut("slow"), 504, "M_UNKNOWN"),
])
def test_each_kind_of_domain_error_has_its_status_and_keeps_its_code(
        error: errors.DomainError, status: int, errcode: str) -> None:
    answer = from_domain(error)
    assert (answer.status, answer.errcode, answer.message) == (status, errcode, error.message)
