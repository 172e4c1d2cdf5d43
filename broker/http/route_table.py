"""Finding the route of a request: one compiled alternation of every path pattern.

Each distinct pattern becomes one alternative ``(?P<pN>...)`` of a single regex (its named
groups renamed ``pN_<name>``), so a lookup is one ``fullmatch`` in C instead of a scan of every
pattern in Python.  The first pattern (in declaration order) that matches the whole path and
serves the method wins; when the first matching pattern lacks the method, the later patterns
are tried, so the answer is exactly what a scan in order would give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from broker.http.endpoint import Route

_GROUP = re.compile(r"\(\?P<(\w+)>")


class DuplicateRoute(ValueError):
    """Two routes declare the same method on the same pattern."""


class NoRoute(LookupError):
    """No route for the request: ``path_matched`` tells 405 (other methods exist) from 404."""

    def __init__(self, path_matched: bool) -> None:
        super().__init__("no route")
        self.path_matched = path_matched


@dataclass
class _Pattern:
    regex: re.Pattern[str]
    by_method: dict[str, Route]


class RouteTable:
    def __init__(self) -> None:
        self._patterns: dict[str, _Pattern] = {}
        self._compiled: re.Pattern[str] | None = None
        self._order: list[_Pattern] = []

    def add(self, route: Route) -> None:
        entry = self._patterns.get(route.pattern)
        if entry is None:
            entry = _Pattern(re.compile(route.pattern), {})
            self._patterns[route.pattern] = entry
        if route.method in entry.by_method:
            raise DuplicateRoute(f"{route.method} {route.pattern} is declared twice "
                                 f"({entry.by_method[route.method].name}, {route.name})")
        entry.by_method[route.method] = route
        self._compiled = None

    def routes(self) -> list[Route]:
        return [route for entry in self._patterns.values() for route in entry.by_method.values()]

    def compile(self) -> re.Pattern[str]:
        """Build the alternation now (else the first request after a change pays for it)."""
        self._order = list(self._patterns.values())
        alternatives = []
        for index, entry in enumerate(self._order):
            renamed = _GROUP.sub(lambda m, i=index: f"(?P<p{i}_{m.group(1)}>",  # type: ignore[misc]
                                 entry.regex.pattern)
            alternatives.append(f"(?P<p{index}>{renamed})")
        self._compiled = re.compile("|".join(alternatives) or "(?!)")
        return self._compiled

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its decoded path arguments; :class:`NoRoute` if there is none."""
        compiled = self._compiled or self.compile()
        found = compiled.fullmatch(path)
        if found is None or found.lastgroup is None:
            raise NoRoute(False)
        first = int(found.lastgroup[1:])
        for entry in self._order[first:]:
            match = entry.regex.fullmatch(path)
            if match is None:
                continue
            route = entry.by_method.get(method) or (
                entry.by_method.get("GET") if method == "HEAD" else None)
            if route is not None:
                return route, {k: unquote(v) for k, v in match.groupdict().items()
                               if v is not None}
        raise NoRoute(True)
