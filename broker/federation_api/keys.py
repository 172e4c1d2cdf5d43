"""Key endpoints: our own keys (``GET /_matrix/key/v2/server``) and the notary service
(``GET /_matrix/key/v2/query/{serverName}``, ``POST /_matrix/key/v2/query``), served by
:class:`broker.services.federation_queries.ServerKeys`.  Neither needs authentication (per the
spec)."""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge
from pydantic import model_validator

from broker.federation_api import KEY_V2
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError, bad_param
from broker.services.federation_queries import KEY_VALIDITY_MS, ServerKeys

__all__ = ["KEY_VALIDITY_MS", "MAX_QUERY_SERVERS", "KeyEndpoints"]

#: Servers one notary query may ask about.
MAX_QUERY_SERVERS = 100


class KeyCriteria(Body):
    minimum_valid_until_ts: Annotated[int, Ge(0)] | None = None


class KeyQuery(Body):
    """``POST /key/v2/query``: server -> key ID -> criteria."""

    server_keys: dict[str, dict[str, KeyCriteria]]

    @model_validator(mode="after")
    def _few_servers(self) -> KeyQuery:
        if len(self.server_keys) > MAX_QUERY_SERVERS:
            raise MatrixError(400, "M_LIMIT_EXCEEDED",
                              f"at most {MAX_QUERY_SERVERS} servers per query")
        return self

    def queries(self) -> list[tuple[str, dict[str, int | None]]]:
        """(server, {key ID: minimum_valid_until_ts})."""
        return [(server, {key_id: criteria.minimum_valid_until_ts
                          for key_id, criteria in keys.items()})
                for server, keys in self.server_keys.items()]


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
            if not (text.isascii() and text.isdigit()):
                raise bad_param("minimum_valid_until_ts must be a timestamp in milliseconds")
            minimum = int(text)
        # No key IDs: every key of the server, valid until at least ``minimum`` (or now).
        return 200, {"server_keys": await self.keys.answer(server_name, {}, minimum)}

    @endpoint("POST", KEY_V2 + r"/query", access=Access.PUBLIC, body=KeyQuery)
    async def post_query(self, call: Call, body: KeyQuery) -> tuple[int, Any]:
        return 200, {"server_keys": await self.keys.notarise(body.queries())}
