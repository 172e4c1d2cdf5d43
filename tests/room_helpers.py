"""Small helpers for room tests over the raw client."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from tests.node_harness import Client

V3 = "/_matrix/client/v3"


def create_room(client: Client, **body: Any) -> str:
    response = client.post(f"{V3}/createRoom", body)
    assert client.status == 200, response
    return str(response["room_id"])


def send_text(client: Client, room_id: str, body: str) -> str:
    response = client.put(
        f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}",
        {"msgtype": "m.text", "body": body})
    assert client.status == 200, response
    return str(response["event_id"])


def join(client: Client, room_id: str) -> None:
    response = client.post(f"{V3}/join/{quote(room_id)}", {})
    assert client.status == 200, response


def sync(client: Client, since: str | None = None, **params: Any) -> dict[str, Any]:
    if since:
        params["since"] = since
    response = client.get(f"{V3}/sync", params=params)
    assert client.status == 200, response
    return dict(response)


def room_path(room_id: str, tail: str) -> str:
    return f"{V3}/rooms/{quote(room_id)}/{tail}"
