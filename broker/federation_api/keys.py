"""Key endpoints: our own keys (``GET /_matrix/key/v2/server``) and the notary service.

Our keys are published valid for ``KEY_VALIDITY_MS`` (1 day, as Synapse's default
``key_refresh_interval``), signed with the current key, with retired keys (from the old keys
file beside the signing key, see ``broker.key_admin``) under ``old_verify_keys``.

As a notary (``GET /_matrix/key/v2/query/{serverName}``, ``POST /_matrix/key/v2/query``) the
node serves the signed responses it holds for other servers, fetching them directly when what it
holds is not valid until the requested ``minimum_valid_until_ts``; each response is served as
received with our signature added. Neither endpoint needs authentication (per the spec).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from broker.federation_api import KEY_V2
from broker.http.errors import MatrixError, bad_param, bad_type
from broker.http.parsing import parse_json_body, query_arg
from broker.key_admin import published_old_keys
from protocol.discovery import is_valid_server_name
from protocol.server_keys import add_notary_signature, build_server_keys_response

#: How long our published keys are valid (Synapse's default key_refresh_interval: 1 day).
KEY_VALIDITY_MS = 24 * 3600 * 1000

#: Servers one notary query may ask about.
MAX_QUERY_SERVERS = 100


def _is_ts(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class KeyServlets:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.old_keys = published_old_keys(node.config.signing_key_path, [node.signing_key])

    def own_keys_response(self) -> dict[str, Any]:
        node = self.node
        return build_server_keys_response(
            node.server_name,
            [node.signing_key],
            [(k.key, k.key_id, k.expired_ts) for k in self.old_keys],
            node.clock.time_ms() + KEY_VALIDITY_MS,
        )

    async def on_get_server(self, request: Any, key_id: str | None = None) -> tuple[int, Any]:
        # The deprecated /server/{keyId} form answers the same: every key we have.
        return 200, self.own_keys_response()

    async def on_get_query(self, request: Any, server_name: str) -> tuple[int, Any]:
        text = query_arg(request, "minimum_valid_until_ts")
        minimum: int | None = None
        if text is not None:
            if not text.isdigit():
                raise bad_param("minimum_valid_until_ts must be a timestamp in milliseconds")
            minimum = int(text)
        # No key IDs: every key of the server, valid until at least ``minimum`` (or now).
        return 200, {"server_keys": await self._answer(server_name, {}, minimum)}

    async def on_post_query(self, request: Any) -> tuple[int, Any]:
        body = parse_json_body(request)
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
        answers = await defer.gatherResults(
            [defer.ensureDeferred(self._answer(server, criteria, None))
             for server, criteria in queries],
            consumeErrors=True,
        )
        return 200, {"server_keys": [r for answer in answers for r in answer]}

    async def _answer(self, server: str, criteria: dict[str, int | None],
                      minimum: int | None) -> list[dict[str, Any]]:
        node = self.node
        if not is_valid_server_name(server):
            return []
        if server == node.server_name:
            return [self.own_keys_response()]
        now = node.clock.time_ms()
        limits = [m for m in criteria.values() if m is not None]
        if minimum is not None:
            limits.append(minimum)
        required = max(limits) if limits else now
        responses = await node.keyring.get_server_key_responses(server, list(criteria), required)
        return [add_notary_signature(r, node.server_name, node.signing_key) for r in responses]


def register_servlets(node: Any, router: Any) -> None:
    servlets = KeyServlets(node)
    router.register("GET", KEY_V2 + r"/server(?:/(?P<key_id>[^/]+))?", servlets.on_get_server)
    router.register("GET", KEY_V2 + r"/query/(?P<server_name>[^/]+)", servlets.on_get_query)
    router.register("POST", KEY_V2 + r"/query", servlets.on_post_query)
