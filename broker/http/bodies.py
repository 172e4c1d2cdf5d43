"""Declared request bodies: an endpoint names the type of its body, the router checks it once.

``@endpoint("POST", ..., body=CreateRoomBody)`` makes the router parse the body strictly (see
:mod:`protocol.strict_json`) and validate it against the type before the handler runs; the
handler receives the typed object as its ``body`` argument.  What an endpoint may declare:

- a :class:`Body` subclass: a JSON object with typed fields (pydantic, strict: a string field
  takes only a string, an integer field never a boolean or a float).  Fields a type does not
  name are kept (Matrix bodies are open; ``body.source`` is the object as sent), and a field
  sent as ``null`` counts as absent unless the type lists it in ``NULLABLE``;
- :data:`JsonObject`: any JSON object, handed over as the dict (event content, account data:
  the service reads it);
- :data:`NoBody`: the endpoint reads no body (whatever is sent is ignored);
- :data:`RawBody`: the handler reads the bytes itself (media uploads).

Every refusal is a 400 with the Matrix code for what is wrong: ``M_NOT_JSON`` for a body that
is not JSON text or not a JSON object (or is empty where the endpoint needs one),
``M_BAD_JSON`` for a value of the wrong type or shape (and JSON outside the node's limits),
``M_MISSING_PARAM`` for a required field that is absent, ``M_INVALID_PARAM`` for a value of
the right type that is not acceptable.  A validator may also raise a domain error
(:mod:`broker.errors`) for a code of its own; it reaches the client unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from twisted.web.http import Request

from broker.http.errors import MatrixError, bad_param, bad_type, missing_param
from broker.http.parsing import parse_json_body


class _Marker:
    """A body declaration that is not a type of JSON object."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Any JSON object, handed to the handler as a dict.
JsonObject: Final = _Marker("JsonObject")
#: The endpoint reads no body.
NoBody: Final = _Marker("NoBody")
#: The handler reads the raw bytes itself.
RawBody: Final = _Marker("RawBody")
#: What an endpoint that declares nothing has (refused for PUT and POST by the route tests).
UNDECLARED: Final = _Marker("UNDECLARED")

BodyType = type["Body"] | _Marker


class Body(BaseModel):
    """A JSON object body with typed fields; unknown fields are kept."""

    model_config = ConfigDict(strict=True, extra="allow")
    #: Fields where ``null`` is a value of its own (not "absent").
    NULLABLE: ClassVar[frozenset[str]] = frozenset()
    #: The keys of the fields whose null counts as absent (names or aliases).
    _NULL_IS_ABSENT: ClassVar[frozenset[str]] = frozenset()
    _source: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._NULL_IS_ABSENT = frozenset(
            field.alias or name for name, field in cls.model_fields.items()
            if name not in cls.NULLABLE)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            absent = cls._NULL_IS_ABSENT
            return {key: value for key, value in data.items()
                    if value is not None or key not in absent}
        return data

    @property
    def source(self) -> dict[str, Any]:
        """The object as it was sent (unknown fields and nulls included); a nested body
        has none."""
        return self._source

    def given(self, name: str) -> bool:
        """Whether the body holds field ``name`` (a non-null value, or null if nullable)."""
        return name in self.model_fields_set


def validate(body_type: type[Body], data: dict[str, Any]) -> Any:
    """``data`` as a ``body_type``; the Matrix error for the first thing wrong otherwise."""
    try:
        parsed = body_type.model_validate(data)
    except ValidationError as e:
        raise _matrix_error(e.errors(include_url=False, include_input=False)) from None
    parsed._source = data
    return parsed


def takes_json(declared: BodyType) -> bool:
    """Whether an endpoint declaring ``declared`` is handed its body as JSON."""
    return declared is JsonObject or isinstance(declared, type)


def read_body(request: Request, declared: BodyType, *, optional: bool = False) -> Any:
    """The request's body as ``declared`` says (see the module docstring).  An empty body is
    ``{}`` when ``optional``; otherwise it is refused like any body that is not an object."""
    if declared is JsonObject:
        return parse_json_body(request, allow_empty=optional)
    if isinstance(declared, type) and issubclass(declared, Body):
        return validate(declared, parse_json_body(request, allow_empty=optional))
    raise TypeError(f"{declared!r} is not a JSON body type")


# What a value of each kind is called in messages, by pydantic's error type.
_KIND_NAMES = {
    "string_type": "a string", "int_type": "an integer", "bool_type": "a boolean",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "list_type": "an array", "float_type": "a number", "none_required": "null",
}


def _matrix_error(errors: list[ErrorDetails]) -> MatrixError:
    """The error a client sees for pydantic's first complaint."""
    error = errors[0]
    kind = error["type"]
    name = ".".join(str(part) for part in error["loc"])
    if kind == "missing":
        return missing_param(f"Missing '{name}'")
    if kind in _KIND_NAMES or kind.endswith("_type"):
        expected = _KIND_NAMES.get(kind, kind.removesuffix("_type"))
        return bad_type(f"'{name}' must be {expected}" if name else f"Must be {expected}")
    message = error["msg"].removeprefix("Value error, ")
    return bad_param(f"'{name}': {message}" if name else message)
