"""Declared request bodies: the router parses and checks a body against the endpoint's type
before the handler runs, and answers what is wrong with the Matrix code for it."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any

from annotated_types import Ge
from pydantic import model_validator
from twisted.web.http import Request
from twisted.web.test.requesthelper import DummyRequest

from broker.errors import Forbidden
from broker.http.bodies import Body, JsonObject, NoBody
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.http.guards import Guards
from broker.http.server import Router
from broker.ratelimit import RateLimiter


class Inner(Body):
    count: int


class Sample(Body):
    NULLABLE = frozenset({"cleared"})
    name: str
    flag: bool = True
    limit: Annotated[int, Ge(1)] = 10
    inner: Inner | None = None
    tags: list[str] = []
    cleared: str | None = "unset"

    @model_validator(mode="after")
    def _not_forbidden(self) -> Sample:
        if self.name == "forbidden":
            raise Forbidden("That name is not allowed")
        return self


class Echo(Endpoints):
    """Each handler answers what it was handed; refused bodies are noted in ``REFUSED``."""

    @endpoint("POST", "/typed", access=Access.PUBLIC, body=Sample)
    async def typed(self, call: Call, body: Sample) -> tuple[int, dict[str, Any]]:
        return 200, {"name": body.name, "flag": body.flag, "limit": body.limit,
                     "count": body.inner.count if body.inner else None, "tags": body.tags,
                     "cleared": body.cleared, "source": body.source,
                     "extra": body.model_extra}

    @endpoint("POST", "/optional", access=Access.PUBLIC, body=Sample, body_optional=True)
    async def optional(self, call: Call, body: Sample) -> tuple[int, dict[str, Any]]:
        return 200, {"name": body.name}

    @endpoint("PUT", "/object", access=Access.PUBLIC, body=JsonObject)
    async def object(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"got": body}

    @endpoint("POST", "/none", access=Access.PUBLIC, body=NoBody)
    async def none(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"ran": True}

    @endpoint("PUT", "/object/(?P<name>[^/]+)", access=Access.PUBLIC, body=JsonObject)
    async def named(self, call: Call, name: str, body: dict[str, Any]
                    ) -> tuple[int, dict[str, Any]]:
        return 200, {}

    async def body_refused(self, handler: str, call: Call, args: dict[str, str],
                           error: MatrixError) -> None:
        REFUSED.append((handler, args, error.errcode))


REFUSED: list[tuple[str, dict[str, str], str]] = []


class _NobodyAuthenticates:
    """Public routes never ask who is calling."""

    async def get_requester(self, request: Request) -> Any:
        raise AssertionError("a public route asked for a user")

    def has_credential(self, request: Request) -> bool:
        return False


def _router() -> Router:
    router = Router(65536, Guards(_NobodyAuthenticates(), RateLimiter({}, False, None)))
    router.add(Echo())
    router.compile()
    return router


def _send(path: str, raw: bytes, method: str = "POST") -> tuple[int, dict[str, Any]]:
    request = DummyRequest([])
    request.method = method.encode()
    request.path = path.encode()
    request.uri = path.encode()
    request.content = io.BytesIO(raw)
    request._disconnected = False
    _router().render(request)
    assert request.finished, "the router left the request unanswered"
    return request.responseCode or 200, json.loads(b"".join(request.written))


def _post(body: Any, path: str = "/typed") -> tuple[int, dict[str, Any]]:
    return _send(path, json.dumps(body).encode())


def _error(answer: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    status, body = answer
    return status, body["errcode"]


def test_a_valid_body_reaches_the_handler_typed() -> None:
    status, body = _post({"name": "a", "flag": False, "limit": 3, "inner": {"count": 2},
                          "tags": ["x"]})
    assert status == 200
    assert (body["name"], body["flag"], body["limit"], body["count"], body["tags"]) == \
        ("a", False, 3, 2, ["x"])


def test_absent_fields_take_their_defaults() -> None:
    status, body = _post({"name": "a"})
    assert (body["flag"], body["limit"], body["count"], body["tags"]) == (True, 10, None, [])


def test_a_missing_required_field_is_missing_param() -> None:
    assert _error(_post({"flag": True})) == (400, "M_MISSING_PARAM")


def test_the_missing_param_error_names_the_field() -> None:
    _, body = _post({})
    assert "'name'" in body["error"]


def test_a_value_of_the_wrong_type_is_bad_json() -> None:
    assert _error(_post({"name": 5})) == (400, "M_BAD_JSON")


def test_a_boolean_is_not_an_integer() -> None:
    assert _error(_post({"name": "a", "limit": True})) == (400, "M_BAD_JSON")


def test_an_integer_is_not_a_boolean() -> None:
    assert _error(_post({"name": "a", "flag": 1})) == (400, "M_BAD_JSON")


def test_a_float_is_not_an_integer() -> None:
    assert _error(_post({"name": "a", "limit": 2.0})) == (400, "M_BAD_JSON")


def test_a_wrong_array_item_is_bad_json() -> None:
    assert _error(_post({"name": "a", "tags": ["x", 1]})) == (400, "M_BAD_JSON")


def test_a_nested_field_of_the_wrong_type_is_bad_json_naming_its_path() -> None:
    status, body = _post({"name": "a", "inner": {"count": "two"}})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON") and "'inner.count'" in body["error"]


def test_a_nested_missing_field_is_missing_param_naming_its_path() -> None:
    status, body = _post({"name": "a", "inner": {}})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    assert "'inner.count'" in body["error"]


def test_a_nested_object_that_is_not_an_object_is_bad_json() -> None:
    assert _error(_post({"name": "a", "inner": [1]})) == (400, "M_BAD_JSON")


def test_a_value_outside_its_range_is_invalid_param() -> None:
    assert _error(_post({"name": "a", "limit": 0})) == (400, "M_INVALID_PARAM")


def test_a_domain_error_of_a_validator_keeps_its_code() -> None:
    assert _error(_post({"name": "forbidden"})) == (403, "M_FORBIDDEN")


def test_unknown_fields_are_kept() -> None:
    _, body = _post({"name": "a", "org.example.custom": {"x": 1}})
    assert body["extra"] == {"org.example.custom": {"x": 1}}


def test_the_source_is_the_object_as_sent() -> None:
    sent = {"name": "a", "flag": None, "org.example.custom": 1}
    _, body = _post(sent)
    assert body["source"] == sent


def test_null_counts_as_absent() -> None:
    _, body = _post({"name": "a", "flag": None, "limit": None})
    assert (body["flag"], body["limit"]) == (True, 10)


def test_null_stays_null_in_a_nullable_field() -> None:
    _, body = _post({"name": "a", "cleared": None})
    assert body["cleared"] is None


def test_a_body_that_is_not_an_object_is_not_json() -> None:
    assert _error(_post(["name"])) == (400, "M_NOT_JSON")


def test_a_body_that_is_not_json_text_is_not_json() -> None:
    assert _error(_send("/typed", b'{"name":')) == (400, "M_NOT_JSON")


def test_json_outside_the_limits_is_bad_json() -> None:
    assert _error(_send("/typed", b'{"name": "a", "limit": 9007199254740992}')) == \
        (400, "M_BAD_JSON")


def test_an_empty_body_is_not_json_where_one_is_needed() -> None:
    assert _error(_send("/typed", b"")) == (400, "M_NOT_JSON")


def test_an_empty_body_is_an_empty_object_where_the_body_is_optional() -> None:
    assert _error(_send("/optional", b"")) == (400, "M_MISSING_PARAM")


def test_a_json_object_body_reaches_the_handler_as_sent() -> None:
    sent = {"body": "hi", "nested": {"list": [1, None]}}
    assert _send("/object", json.dumps(sent).encode(), "PUT") == (200, {"got": sent})


def test_a_json_object_body_must_be_an_object() -> None:
    assert _error(_send("/object", b"[]", "PUT")) == (400, "M_NOT_JSON")


def test_an_endpoint_without_a_body_ignores_what_is_sent() -> None:
    assert _send("/none", b"not json") == (200, {"ran": True})


def test_the_group_is_told_of_a_refused_body_with_the_handler_and_path_arguments() -> None:
    REFUSED.clear()
    _send("/object/n1", b"[]", "PUT")
    assert REFUSED == [("named", {"name": "n1"}, "M_NOT_JSON")]


def test_the_group_is_told_of_a_refusal_by_a_validator_with_its_code() -> None:
    REFUSED.clear()
    _post({"name": "forbidden"})
    assert REFUSED == [("typed", {}, "M_FORBIDDEN")]


def test_the_group_is_not_told_of_an_accepted_body() -> None:
    REFUSED.clear()
    _post({"name": "a"})
    assert REFUSED == []
