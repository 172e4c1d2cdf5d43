"""Hostile inputs for every operation: the issue's classes, placed where the spec lets them go.

Schemathesis generates values a schema describes; what a careless client or an attacker sends
is often not describable (JSON that is not JSON, bytes that are not UTF-8). ``hostile_requests``
builds, for one operation, a fixed table of such requests:

- the JSON body (the spec's example, or ``{}``) with each body class placed in each top-level
  field the spec documents and under a new key (deep and huge values only under the new key);
- the whole body replaced by text that is not JSON, or by JSON that is not an object;
- each path parameter, and each query parameter, replaced by each text class.

Body classes other than ``huge-string`` are what canonical JSON cannot carry: the node must
refuse them (a 2xx is the failure ``accepted``), as it must refuse a whole body that is not JSON
text. A huge string may be accepted where it fits; an empty body or one that is JSON but not an
object only must not fail inside the node.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.fuzz.spec_bundle import SpecOperation

SENTINEL = "__fuzz_hostile__"
DEEP = 5000
OVER_DEPTH = 101

#: Raw JSON values (bytes put where a JSON value goes).
BODY_CLASSES: dict[str, bytes] = {
    "lone-surrogate": b'"\\ud800"',
    "lone-low-surrogate": b'"x\\udfffy"',
    "nan": b"NaN",
    "infinity": b"Infinity",
    "minus-infinity": b"-Infinity",
    "float-overflow": b"1e400",
    "int-above-2^53": b"9007199254740992",
    "int-below-2^53": b"-9007199254740992",
    "int-huge": b"1" + b"0" * 40,
    "nul": b'"a\\u0000b"',
    "nested-past-limit": b"[" * OVER_DEPTH + b"]" * OVER_DEPTH,
    "nested-deep": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "huge-string": b'"' + b"x" * 300_000 + b'"',
}
#: Classes placed in the body only under a new key: large, and the same wherever they are.
WHOLE_BODY_ONLY = frozenset({"nested-deep", "huge-string"})
#: Body classes a node may accept.
MAY_BE_ACCEPTED = frozenset({"huge-string"})

#: Whole bodies in place of the JSON object; the first two are not JSON text at all (a byte order
#: mark before JSON text may be ignored, RFC 8259 section 8.1).
WHOLE_BODIES: dict[str, bytes] = {
    "truncated": b'{"a":',
    "invalid-utf8": b'{"a":"\xff"}',
    "bom": b"\xef\xbb\xbf{}",
    "empty": b"",
    "array": b"[]",
    "string": b'"x"',
    "null": b"null",
    "number": b"1",
}
NOT_JSON_TEXT = frozenset({"truncated", "invalid-utf8"})

#: Percent-encoded text for path segments and query values.
TEXT_CLASSES: dict[str, str] = {
    "nul": "a%00b",
    "invalid-utf8": "%FF%FE",
    "lone-surrogate-utf8": "%ED%A0%80",
    "int-huge": "9" * 30,
    "int-negative-huge": "-" + "9" * 30,
    "digits-past-int-conversion": "9" * 5000,
    "long": "x" * 4000,
}


@dataclass(frozen=True)
class HostileRequest:
    kind: str  # "body", "path" or "query"
    klass: str
    where: str
    method: str
    url_path: str
    body: bytes | None

    @property
    def must_refuse(self) -> bool:
        if self.kind == "whole-body":
            return self.klass in NOT_JSON_TEXT
        return self.kind == "body" and self.klass not in MAY_BE_ACCEPTED

    def describe(self) -> str:
        path = self.url_path if len(self.url_path) <= 200 else self.url_path[:200] + "..."
        return f"{self.method.upper()} {path} {self.kind}[{self.where}]={self.klass}"


def _path(spec: SpecOperation, values: dict[str, str], raw: dict[str, str]) -> str:
    """The operation's path with each parameter filled: ``raw`` ones as they are (already
    percent-encoded), the others quoted."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in raw:
            return raw[name]
        return quote(values.get(name, "x"), safe="")
    return re.sub(r"\{([^}]+)\}", fill, spec.path)


def _base_body(json_body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The spec's example body (or ``{}``) and the top-level fields to place values in."""
    schema = json_body.get("schema") or {}
    example = json_body.get("example", schema.get("example"))
    base = dict(example) if isinstance(example, dict) else {}
    fields = list(base) + [name for name in (schema.get("properties") or {}) if name not in base]
    return base, fields


def _with_value(base: dict[str, Any], field: str, raw: bytes) -> bytes:
    text = json.dumps({**base, field: SENTINEL}).encode()
    return text.replace(json.dumps(SENTINEL).encode(), raw, 1)


def hostile_requests(spec: SpecOperation, definition: dict[str, Any],
                     grounded: dict[str, str]) -> list[HostileRequest]:
    """The table of hostile requests for one operation (``definition`` is its OpenAPI
    object; ``grounded`` real values for its path parameters)."""
    found: list[HostileRequest] = []
    plain_path = _path(spec, grounded, {})
    json_body = ((definition.get("requestBody") or {}).get("content") or {}).get(
        "application/json")
    if json_body is not None:
        base, fields = _base_body(json_body)
        for klass, raw in BODY_CLASSES.items():
            places = ["(new key)"] + ([] if klass in WHOLE_BODY_ONLY else fields)
            for field in places:
                key = "fuzz_extra" if field == "(new key)" else field
                found.append(HostileRequest("body", klass, field, spec.method, plain_path,
                                            _with_value(base, key, raw)))
        found += [HostileRequest("whole-body", klass, "(body)", spec.method, plain_path, raw)
                  for klass, raw in WHOLE_BODIES.items()]
    body = b"{}" if json_body is not None else None
    for name in spec.path_parameters:
        for klass, text in TEXT_CLASSES.items():
            found.append(HostileRequest("path", klass, name, spec.method,
                                        _path(spec, grounded, {name: text}), body))
    for parameter in definition.get("parameters") or []:
        if parameter.get("in") != "query":
            continue
        for klass, text in TEXT_CLASSES.items():
            query = f"?{quote(parameter['name'], safe='')}={text}"
            found.append(HostileRequest("query", klass, parameter["name"], spec.method,
                                        plain_path + query, body))
    return found
