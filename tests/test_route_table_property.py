"""The compiled route table answers exactly what a scan of the routes in order would answer."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.http.endpoint import Access, Requirements, Route
from broker.http.route_table import NoRoute, RouteTable

SEGMENTS = ["rooms", "state", "send", "x", "!r:hs", "m.room.name", "", "a/b", "v3", "r0"]
PATTERNS = [
    "/c/rooms/(?P<room_id>[^/]+)/state",
    "/c/rooms/(?P<room_id>[^/]+)/state/(?P<event_type>[^/]+)",
    "/c/rooms/(?P<room_id>[^/]+)/state/(?P<event_type>[^/]+)/(?P<state_key>.*)",
    "/c/rooms/(?P<room_id>[^/]+)/send/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)",
    "/c/(?:v3|r0)/x",
    "/c/rooms/x/state",
]
METHODS = ["GET", "PUT", "POST", "HEAD"]


async def _handler(call: Any, **args: str) -> Any:
    return 200, {}


def _scan(routes: list[Route], method: str, path: str) -> tuple[str, dict[str, str]] | bool:
    """What a linear scan in declaration order finds: (route name, args), or whether some
    pattern matched the path (405) or none did (404)."""
    matched = False
    for route in routes:
        found = re.fullmatch(route.pattern, path)
        if found is None:
            continue
        matched = True
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            return route.name, {k: v for k, v in found.groupdict().items() if v is not None}
    return matched


routes_strategy = st.lists(
    st.tuples(st.sampled_from(["GET", "PUT", "POST"]), st.sampled_from(PATTERNS)),
    min_size=1, max_size=10, unique=True)
paths = st.one_of(
    st.sampled_from(["/c/rooms/x/state", "/c/rooms/x/state/t", "/c/rooms/x/state/t/k/l",
                     "/c/rooms/!r:hs/send/m.room.name/1", "/c/v3/x", "/c/r0/x"]),
    st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=6).map(
        lambda parts: "/c/" + "/".join(parts)))


@settings(max_examples=500, deadline=None)
@given(routes_strategy, st.sampled_from(METHODS), paths)
def test_the_table_finds_what_a_scan_in_order_finds(declared: list[tuple[str, str]],
                                                   method: str, path: str) -> None:
    routes = [Route(m, p, _handler, Requirements(Access.PUBLIC), f"r{i}")
              for i, (m, p) in enumerate(declared)]
    table = RouteTable()
    for route in routes:
        table.add(route)
    expected = _scan(routes, method, path)
    try:
        route, args = table.match(method, path)
    except NoRoute as e:
        assert expected is e.path_matched
        return
    assert (route.name, args) == expected
