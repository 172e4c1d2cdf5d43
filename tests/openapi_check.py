"""Checking a server against an OpenAPI 3.1 document of ours (docs/api/*.openapi.yaml): which
requests the document allows, and whether an answer matches the document's schema for its
status.  The admin and the broker client documents are tested with it."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCS = Path(__file__).resolve().parent.parent / "docs" / "api"


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def template_of(pattern: str) -> str:
    """A route pattern as the document's path template."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)


class OpenApiDocument:
    def __init__(self, name: str) -> None:
        self.path = DOCS / name
        self.uri = f"urn:{name}"

    @cached_property
    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.path.read_text())
        return loaded

    @cached_property
    def _registry(self) -> Registry:
        return Registry().with_resource(self.uri, Resource.from_contents(
            self.document, default_specification=DRAFT202012))

    def validator(self, pointer: str) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator({"$ref": f"{self.uri}#{pointer}"},
                                               registry=self._registry)

    def operations(self) -> set[tuple[str, str]]:
        """(method, path template) of every operation of the document."""
        return {(method.upper(), template) for template, item in self.document["paths"].items()
                for method in item if method != "parameters"}

    def open_operations(self) -> set[tuple[str, str]]:
        """The operations that take no credential (``security: []``)."""
        return {(method.upper(), template) for template, item in self.document["paths"].items()
                for method, operation in item.items()
                if method != "parameters" and operation.get("security") == []}

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The document's path template matching ``path`` and its operation for ``method``."""
        for template, item in self.document["paths"].items():
            regex = re.sub(r"\{[^}]+\}", "[^/]+", template)
            if re.fullmatch(regex, path.split("?")[0]) and method.lower() in item:
                return template, item[method.lower()]
        raise AssertionError(f"{method} {path} is not in the document")

    def request_allowed(self, method: str, path: str, body: Any) -> bool:
        template, operation = self.operation(method, path)
        if body is None:
            return "requestBody" not in operation
        pointer = _pointer("paths", template, method.lower(), "requestBody", "content",
                           "application/json", "schema")
        return self.validator(pointer).is_valid(body)

    def query_allowed(self, method: str, path: str) -> bool:
        """Whether the query arguments fit the document's parameters of the operation."""
        template, operation = self.operation(method, path)
        _, _, query = path.partition("?")
        parameters = {p["name"]: i for i, p in enumerate(operation.get("parameters", ()))}
        for name, _, value in (part.partition("=") for part in query.split("&") if part):
            if name not in parameters:
                return False
            pointer = _pointer("paths", template, method.lower(), "parameters",
                               str(parameters[name]), "schema")
            schema = operation["parameters"][parameters[name]]["schema"]
            typed: Any = int(value) if schema.get("type") == "integer" and value.isdigit() \
                else value
            if not self.validator(pointer).is_valid(typed):
                return False
        return True

    def check_answer(self, method: str, path: str, status: int, answer: Any) -> None:
        template, operation = self.operation(method, path)
        responses = operation["responses"]
        assert str(status) in responses, f"{method} {template} answered undocumented {status}"
        response = responses[str(status)]
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[-1]
            pointer = _pointer("components", "responses", name, "content",
                               "application/json", "schema")
        else:
            media = "application/json"
            if isinstance(answer, str):  # a text answer (CSV): a text type the status lists
                media = next((m for m in response.get("content", {}) if m.startswith("text/")),
                             "")
                assert media, f"{method} {template} {status} answered text it does not list"
            pointer = _pointer("paths", template, method.lower(), "responses", str(status),
                               "content", media, "schema")
        errors = [e.message for e in self.validator(pointer).iter_errors(answer)]
        assert errors == [], f"{method} {path} {status}: {errors} in {answer}"

    def check_routes(self, routes: Any, prefix: str) -> None:
        """The routes under ``prefix`` a node serves are the document's operations."""
        served = {(r.method, template_of(r.pattern)) for r in routes
                  if r.pattern.startswith(prefix)}
        assert served == self.operations()

    def check_loads_in_schemathesis(self) -> None:
        import schemathesis

        schema = schemathesis.openapi.from_dict(self.document)
        assert self.document["openapi"].startswith("3.1")
        labels = [operation.ok().label for operation in schema.get_all_operations()]
        assert len(labels) == len(self.operations())


def request_target(case: Any) -> str:
    """The path and query of a request schemathesis generated, as the router reads them."""
    query = "&".join(f"{k}={v}" for k, v in (case.query or {}).items())
    return case.formatted_path + (f"?{query}" if query else "")
