"""Reading a request: its JSON body (parsed strictly, see :mod:`protocol.strict_json`) and
its query-string arguments."""

from __future__ import annotations

from typing import Any

from twisted.web.http import Request

from broker.http.errors import MatrixError, bad_json, bad_param
from protocol.strict_json import JsonRefused, loads_strict


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed strictly (see :mod:`protocol.strict_json`); a 400 Matrix error
    (M_NOT_JSON or M_BAD_JSON) if it is not acceptable JSON.  Every JSON body the node accepts,
    client or federation, goes through here."""
    try:
        return loads_strict(raw)
    except JsonRefused as e:
        raise MatrixError(400, e.errcode, e.message) from e


def parse_json_body(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (parsed by :func:`parse_json`); M_NOT_JSON otherwise."""
    raw = request.content.read() if request.content is not None else b""
    if not raw.strip():
        if allow_empty:
            return {}
        raise bad_json("Request body is empty; expected a JSON object.")
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise bad_json("Request body must be a JSON object.")
    return body


def query_arg(request: Request, name: str, default: str | None = None) -> str | None:
    """One query-string argument, decoded."""
    values = request.args.get(name.encode("ascii")) if request.args else None
    if not values:
        return default
    return _decode_arg(name, values[0])


def query_args(request: Request, name: str) -> list[str]:
    values = request.args.get(name.encode("ascii"), []) if request.args else []
    return [_decode_arg(name, v) for v in values]


def _decode_arg(name: str, value: bytes) -> str:
    if b"\x00" in value:
        raise bad_param(f"'{name}' must not contain NUL")
    return value.decode("utf-8", "replace")
