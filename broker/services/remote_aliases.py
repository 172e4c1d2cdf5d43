"""Another server's room aliases, resolved through its federation directory query
(``GET /_matrix/federation/v1/query/directory?room_alias=``) and remembered for a short while
(``ttl_ms``, at most ``max_entries`` of them, the oldest dropped first), so a client joining
by alias does not ask the other server twice."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from broker.errors import Forbidden, NotFound, Unavailable
from federation.transport_client import FederationClient
from protocol.errors import DestinationRefused, HttpResponseError

QUERY_DIRECTORY = "/_matrix/federation/v1/query/directory"
DEFAULT_TTL_MS = 60_000
DEFAULT_MAX_ENTRIES = 10_000
QUERY_TIMEOUT_S = 30.0


class RemoteAliases:
    def __init__(self, client: FederationClient, clock: Any, *, ttl_ms: int = DEFAULT_TTL_MS,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.client = client
        self.clock = clock
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._known: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()

    async def resolve(self, alias: str) -> dict[str, Any]:
        """``{"room_id", "servers"}`` of another server's alias (404 M_NOT_FOUND when it has
        none, 403 when federation with it is not allowed, 502 when it cannot be asked)."""
        known = self._known.get(alias)
        now = self.clock.time_ms()
        if known is not None and now - known[0] < self.ttl_ms:
            return known[1]
        server = alias[1:].partition(":")[2]
        try:
            answer = await self.client.get_json(server, QUERY_DIRECTORY, {"room_alias": alias},
                                                timeout=QUERY_TIMEOUT_S)
        except HttpResponseError as e:
            if e.status == 404:
                raise NotFound(f"Room alias {alias} not found") from e
            raise Unavailable(f"{server} answered {e.status}") from e
        except DestinationRefused as e:
            raise Forbidden(str(e)) from e
        except Exception as e:  # unreachable, timed out
            raise Unavailable(f"Could not ask {server} about {alias}") from e
        result = _checked(answer, alias)
        self._known[alias] = (now, result)
        self._known.move_to_end(alias)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
        return result


def _checked(answer: Any, alias: str) -> dict[str, Any]:
    room_id = answer.get("room_id") if isinstance(answer, dict) else None
    servers = answer.get("servers") if isinstance(answer, dict) else None
    if not isinstance(room_id, str) or not isinstance(servers, list) or \
            not all(isinstance(s, str) for s in servers):
        raise Unavailable(f"The answer about {alias} is not a directory answer")
    return {"room_id": room_id, "servers": servers}
