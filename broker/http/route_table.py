"""Finding the route of a request: one compiled alternation of every path pattern.

Each route becomes one alternative ``(?P<pN>...)`` of a single regex (its named groups renamed
``pN_<name>``), in declaration order, so finding the first route whose pattern matches the
whole path is one ``fullmatch`` in C instead of a scan in Python.  When that route serves
another method, the later routes are tried from there, so the answer is exactly what a scan of
every route in order would give (``tests/test_route_table_property.py`` checks it).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from broker.http.endpoint import Route

_GROUP = re.compile(r"\(\?P<(\w+)>")


def route_label(pattern: str) -> str:
    """A route's pattern as a metrics label: each named group ``(?P<name>...)`` becomes
    ``{name}``, the rest of the pattern stays as declared (one label per route, never a path)."""
    out: list[str] = []
    index = 0
    while (start := pattern.find("(?P<", index)) != -1:
        name_end = pattern.index(">", start)
        out.append(pattern[index:start])
        out.append("{" + pattern[start + 4:name_end] + "}")
        index = _group_end(pattern, name_end + 1)
    out.append(pattern[index:])
    return "".join(out)


def _group_end(pattern: str, index: int) -> int:
    """The index just after the parenthesis that closes the group open before ``index``."""
    depth, in_class = 1, False
    while depth:
        char = pattern[index]
        if char == "\\":
            index += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        index += 1
    return index


class DuplicateRoute(ValueError):
    """Two routes declare the same method on the same pattern."""


class NoRoute(LookupError):
    """No route for the request: ``path_matched`` tells 405 (other methods exist) from 404."""

    def __init__(self, path_matched: bool) -> None:
        super().__init__("no route")
        self.path_matched = path_matched


class RouteTable:
    def __init__(self) -> None:
        self._routes: list[Route] = []  # in declaration order
        self._regexes: list[re.Pattern[str]] = []
        self._declared: dict[tuple[str, str], Route] = {}
        self._compiled: re.Pattern[str] | None = None
        # Per route: (group name in the alternation, argument name) of each path argument.
        self._arg_groups: list[list[tuple[str, str]]] = []

    def add(self, route: Route) -> None:
        key = (route.pattern, route.method)
        if key in self._declared:
            raise DuplicateRoute(f"{route.method} {route.pattern} is declared twice "
                                 f"({self._declared[key].name}, {route.name})")
        self._declared[key] = route
        self._routes.append(route)
        self._regexes.append(re.compile(route.pattern))
        self._compiled = None

    def routes(self) -> list[Route]:
        return list(self._routes)

    def compile(self) -> re.Pattern[str]:
        """Build the alternation now (else the first request after a change pays for it)."""
        alternatives = []
        self._arg_groups = []
        for index, regex in enumerate(self._regexes):
            renamed = _GROUP.sub(lambda m, i=index: f"(?P<p{i}_{m.group(1)}>",  # type: ignore[misc]
                                 regex.pattern)
            alternatives.append(f"(?P<p{index}>{renamed})")
            self._arg_groups.append([(f"p{index}_{name}", name) for name in regex.groupindex])
        self._compiled = re.compile("|".join(alternatives) or "(?!)")
        return self._compiled

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its decoded path arguments; :class:`NoRoute` if there is none."""
        compiled = self._compiled or self.compile()
        found = compiled.fullmatch(path)
        if found is None or found.lastgroup is None:
            raise NoRoute(False)
        first = int(found.lastgroup[1:])  # no route declared before it matches the path
        route = self._routes[first]
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            # The usual case: the arguments are in the alternation's match already.
            return route, {name: unquote(value) for group, name in self._arg_groups[first]
                           if (value := found.group(group)) is not None}
        for route, regex in zip(self._routes[first:], self._regexes[first:], strict=True):
            if route.method != method and not (method == "HEAD" and route.method == "GET"):
                continue
            match = regex.fullmatch(path)
            if match is not None:
                return route, {k: unquote(v) for k, v in match.groupdict().items()
                               if v is not None}
        raise NoRoute(True)
