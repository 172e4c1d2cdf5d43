"""Every route a node serves declares its requirements, and the router enforces them.

The node is built in-process from a generated config (SQLite in a temporary folder, federation
on), so the routes checked are exactly those it serves.  Each route must declare who may call it;
a route open to anyone must be one the spec leaves unauthenticated (listed here, so opening a
route is a visible decision); federation routes must require a signed server; every PUT, POST
and PATCH route declares its body (a type, any JSON object, raw bytes or none).  Then every route
that requires a user is called without a token and must answer 401 ``M_MISSING_TOKEN``, before
its handler runs; so must every application route without an app token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.web.test.requesthelper import DummyRequest

from broker.admin_api.calls import AdminEndpoints
from broker.config import load_config
from broker.http.bodies import UNDECLARED, takes_json
from broker.http.endpoint import Access, Route
from broker.init_config import write_initial_config
from broker.node import Node

# Patterns (regex source) that anyone may call, with why.
PUBLIC_PATTERNS = {
    r"/_matrix/client/versions": "discovery",
    r"/health": "load balancers ask whether the node can serve",
    r"/_matrix/client/(?:v3|r0)/login": "logging in",
    r"/_matrix/client/(?:v3|r0)/register": "registration",
    r"/_matrix/client/(?:v3|r0)/register/available": "registration",
    r"/_matrix/client/(?:v3|r0)/publicRooms": "the public room directory may be read anonymously",
    r"/_matrix/client/(?:v3|r0)/directory/room/(?P<alias>[^/]+)": "alias lookup",
    r"/_matrix/client/(?:v3|r0)/directory/list/room/(?P<room_id>[^/]+)":
        "a room's directory visibility may be read anonymously (PUT requires a token)",
    r"/_matrix/client/(?:v3|r0)/profile/(?P<user_id>[^/]+)": "profiles may be read anonymously",
    r"/_matrix/client/(?:v3|r0)/profile/(?P<user_id>[^/]+)/(?P<field>displayname|avatar_url)":
        "profiles may be read anonymously (PUT still requires the owner's token)",
    r"/_matrix/client/(?:v3|r0)/profile/(?P<user_id>[^/]+)/(?P<key>in\.gov\.broker\.\w+)":
        "the government profile fields may be read anonymously like the rest of the profile",
    r"/_matrix/client/(?:v3|r0)/account/password":
        "a forgotten or first password: the emailed code's UIA stage proves the user",
    r"/_matrix/client/(?:v3|r0)/account/password/email/requestToken":
        "a forgotten or first password: the spec asks for no token",
    r"/_broker/client/v1/password/email/submitToken":
        "the submit_url of a password code (the Identity Service API's submitToken, no token)",
    r"/_broker/client/v1/account_validity/renew":
        "a renewal email's link, opened from a mail reader: the emailed token proves the user",
    r"/_matrix/key/v2/server": "a server's own keys",
    r"/_matrix/key/v2/server/(?P<key_id>[^/]+)": "a server's own keys",
    r"/_matrix/key/v2/query": "the notary: the spec leaves key queries unauthenticated",
    r"/_matrix/key/v2/query/(?P<server_name>[^/]+)": "the notary (as above)",
    r"/_matrix/federation/v1/version": "the server's software version",
}
PUBLIC_PREFIXES = ("/_matrix/media/",)  # the unauthenticated legacy media API


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    folder: Path = tmp_path_factory.mktemp("node")
    config_path = folder / "homeserver.yaml"
    write_initial_config(config_path=config_path, server_name="routes.test", port=1,
                         bind_address="127.0.0.1", data_dir=str(folder / "data"),
                         database_engine="sqlite", database_dsn="", enable_registration=True,
                         overwrite=True, federation_port=2, tls_self_signed=True)
    built = Node(load_config(config_path))
    built.setup()
    yield built
    built.db.close()


def _routes(node: Node) -> list[Route]:
    return node.router.routes()


def test_every_route_declares_its_requirements(node: Node) -> None:
    undeclared = [f"{r.method} {r.pattern} ({r.name})" for r in _routes(node) if r.requires is None]
    assert undeclared == []


def test_only_listed_routes_are_open_to_anyone(node: Node) -> None:
    opened = [f"{r.method} {r.pattern}" for r in _routes(node)
              if r.requires is not None
              and r.requires.access in (Access.PUBLIC, Access.ANYONE_OR_USER)
              and r.pattern not in PUBLIC_PATTERNS and not r.pattern.startswith(PUBLIC_PREFIXES)]
    assert opened == []


def test_federation_routes_require_a_signed_server(node: Node) -> None:
    unsigned = [f"{r.method} {r.pattern}" for r in _routes(node)
                if r.pattern.startswith("/_matrix/federation/") and r.requires is not None
                and r.requires.access is not Access.SERVER and r.pattern not in PUBLIC_PATTERNS]
    assert unsigned == []


def test_every_put_post_and_patch_route_declares_its_body(node: Node) -> None:
    undeclared = [f"{r.method} {r.pattern} ({r.name})" for r in _routes(node)
                  if r.method in ("PUT", "POST", "PATCH") and r.requires is not None
                  and r.requires.body is UNDECLARED]
    assert undeclared == []


def test_every_admin_route_with_a_body_names_what_its_refusals_record(node: Node) -> None:
    unnamed = []
    for route in _routes(node):
        owner = getattr(route.handler, "__self__", None)
        if isinstance(owner, AdminEndpoints) and route.requires is not None and \
                takes_json(route.requires.body) and \
                route.handler.__name__ not in owner.BODY_ACTIONS:
            unnamed.append(route.name)
    assert unnamed == []


def _example_path(pattern: str) -> str:
    """A concrete path the pattern matches: each named group filled with a plausible value."""
    def fill(match: re.Match[str]) -> str:
        if re.fullmatch(r"\w+(\|\w+)*", match.group(2)):  # a choice of words: the first
            return match.group(2).split("|")[0]
        return {"room_id": "!r:routes.test", "user_id": "@u:routes.test",
                "event_id": "$e", "key": "in.gov.broker.class"}.get(match.group(1), "x")
    path = re.sub(r"\(\?P<(\w+)>([^)]*)\)", fill, pattern)
    path = re.sub(r"\(\?:([^|)]*)[^)]*\)", r"\1", path)
    return path.replace("\\", "")


def _call(node: Node, method: str, path: str) -> tuple[int, dict[str, Any]]:
    import json

    request = DummyRequest([])
    request.method = method.encode()
    request.path = path.encode()
    request.uri = path.encode()
    request.content = None
    request._disconnected = False
    node.router.render(request)
    assert request.finished, f"{method} {path} is still pending without a token"
    return request.responseCode or 200, json.loads(b"".join(request.written))


def test_user_routes_refuse_a_call_without_a_token(node: Node) -> None:
    refused = []
    for route in _routes(node):
        if route.requires is None or route.requires.access not in (
                Access.USER, Access.ADMIN, Access.APP):
            continue
        path = _example_path(route.pattern)
        status, body = _call(node, route.method, path)
        if (status, body.get("errcode")) != (401, "M_MISSING_TOKEN"):
            refused.append(f"{route.method} {path}: {status} {body}")
    assert refused == []
