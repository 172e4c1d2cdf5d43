"""Key endpoints: our own keys (``GET /_matrix/key/v2/server``) and the notary service
(``GET /_matrix/key/v2/query/{serverName}``, ``POST /_matrix/key/v2/query``), served by
:class:`broker.services.federation_queries.ServerKeys`.  Neither needs authentication (per the
spec)."""

from __future__ import annotations

from typing import Any

from broker.federation_api import KEY_V2
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError, bad_param, bad_type
from broker.services.federation_queries import KEY_VALIDITY_MS, ServerKeys

__all__ = ["KEY_VALIDITY_MS", "MAX_QUERY_SERVERS", "KeyEndpoints"]

#: Servers one notary query may ask about.
MAX_QUERY_SERVERS = 100


def _is_ts(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_key_query(body: dict[str, Any]) -> list[tuple[str, dict[str, int | None]]]:
    """The body of ``POST /key/v2/query``: (server, {key ID: minimum_valid_until_ts})."""
    wanted = body.get("server_keys")
    if not isinstance(wanted, dict):
        raise bad_type("'server_keys' must be an object")
    if len(wanted) > MAX_QUERY_SERVERS:
        raise MatrixError(400, "M_LIMIT_EXCEEDED",
                          f"at most {MAX_QUERY_SERVERS} servers per query")
    queries: list[tuple[str, dict[str, int | None]]] = []
    for server, keys in wanted.items():
        if not isinstance(keys, dict):
            raise bad_type(f"'server_keys.{server}' must be an object")
        criteria: dict[str, int | None] = {}
        for key_id, criterion in keys.items():
            if not isinstance(criterion, dict):
                raise bad_type(f"criteria for {server} {key_id} must be an object")
            minimum = criterion.get("minimum_valid_until_ts")
            if minimum is not None and not _is_ts(minimum):
                raise bad_type("minimum_valid_until_ts must be a timestamp in milliseconds")
            criteria[key_id] = minimum
        queries.append((server, criteria))
    return queries


class KeyEndpoints(Endpoints):
    def __init__(self, keys: ServerKeys) -> None:
        self.keys = keys

    # The deprecated /server/{keyId} form answers the same: every key we have.
    @endpoint("GET", KEY_V2 + r"/server", access=Access.PUBLIC)
    @endpoint("GET", KEY_V2 + r"/server/(?P<key_id>[^/]+)", access=Access.PUBLIC)
    async def get_server(self, call: Call, key_id: str | None = None) -> tuple[int, Any]:
        return 200, self.keys.own()

    @endpoint("GET", KEY_V2 + r"/query/(?P<server_name>[^/]+)", access=Access.PUBLIC)
    async def get_query(self, call: Call, server_name: str) -> tuple[int, Any]:
        text = call.arg("minimum_valid_until_ts")
        minimum: int | None = None
        if text is not None:
            if not text.isdigit():
                raise bad_param("minimum_valid_until_ts must be a timestamp in milliseconds")
            minimum = int(text)
        # No key IDs: every key of the server, valid until at least ``minimum`` (or now).
        return 200, {"server_keys": await self.keys.answer(server_name, {}, minimum)}

    @endpoint("POST", KEY_V2 + r"/query", access=Access.PUBLIC)
    async def post_query(self, call: Call) -> tuple[int, Any]:
        queries = parse_key_query(call.json())
        return 200, {"server_keys": await self.keys.notarise(queries)}
