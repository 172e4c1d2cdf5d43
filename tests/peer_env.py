"""A real node and signed fake peers, for tests of what a hostile peer can do over federation.

``peer_env(workdir, engine)`` starts a node (SQLite or PostgreSQL) that pins the keys of two
fake peers and allows only the first. ``join_public_room`` makes a fresh public room of a local
user (named, with one message) that the allowed peer has joined; ``view`` is the local user's
view of it (state and timeline), to check that bad input left the room unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fake_peer import FakePeer, RoomView
from tests.node_harness import Client, NodeProcess
from tests.room_helpers import create_room, room_path, send_text
from tests.storage_helpers import (
    POSTGRES_ENV,
    POSTGRES_SKIP,
    create_postgres_database,
    drop_postgres_database,
)

ALLOWED = "127.0.0.1:1"
DENIED = "127.0.0.1:2"
ENGINES = ["sqlite", "postgres"]


@dataclass
class Env:
    node: NodeProcess
    peer: FakePeer
    denied: FakePeer


@dataclass
class Joined:
    """A public room of the node with a local member and a joined member of the peer."""

    local: Client
    room_id: str
    room: RoomView
    remote_user: str


def node_with_organisations(workdir: Path, organisations: list[dict[str, Any]]
                            ) -> tuple[NodeProcess, FakePeer]:
    """A started node with federation whose organisations file lists ``organisations``, and
    an allowed fake peer whose keys it pins (stop the node when done)."""
    import yaml

    orgs = workdir / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": organisations}))
    peer = FakePeer(ALLOWED)
    node = NodeProcess(workdir, federation=True, overrides={
        "federation.pinned_keys": peer.pinned_key_config(),
        "organisations.path": str(orgs)})
    node.allow_servers(peer.server_name)
    node.start()
    return node, peer


@contextmanager
def two_nodes(engine: str, tmp_path_factory: Any, name: str, overrides: dict[str, Any],
              also_allowed: tuple[str, ...] = (), b_overrides: dict[str, Any] | None = None,
              node_class: type[NodeProcess] = NodeProcess
              ) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    """Two started nodes of ours on ``engine`` (each its own database) that allow each other
    and ``also_allowed``, with ``overrides`` in their configs (``b_overrides``, if given, in
    the second's); stopped (and their databases dropped) on exit."""
    if engine == "postgres" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(POSTGRES_SKIP)
    databases = [create_postgres_database() if engine == "postgres" else ("", "")
                 for _ in "ab"]
    configs = [overrides, overrides if b_overrides is None else b_overrides]
    a, b = (node_class(Path(tmp_path_factory.mktemp(f"{name}_{n}")), federation=True,
                       engine=engine, dsn=dsn, overrides=config)
            for n, (dsn, _name), config in zip("ab", databases, configs, strict=True))
    a.allow(b).allow_servers(*also_allowed)
    b.allow(a).allow_servers(*also_allowed)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()
        for _dsn, database in databases:
            if database:
                drop_postgres_database(database)


@contextmanager
def peer_env(workdir: Path, engine: str = "sqlite") -> Iterator[Env]:
    """A running node on ``engine`` with an allowed and a refused fake peer."""
    dsn = name = ""
    if engine == "postgres":
        if not os.environ.get(POSTGRES_ENV):
            pytest.skip(POSTGRES_SKIP)
        dsn, name = create_postgres_database()
    peer, denied = FakePeer(ALLOWED), FakePeer(DENIED)
    node = NodeProcess(workdir, federation=True, engine=engine, dsn=dsn, overrides={
        "federation.pinned_keys": {**peer.pinned_key_config(), **denied.pinned_key_config()}})
    node.allow_servers(peer.server_name)
    node.start()
    try:
        yield Env(node, peer, denied)
    finally:
        node.stop()
        if name:
            drop_postgres_database(name)


def join_public_room(env: Env, **create: Any) -> Joined:
    local = env.node.register()
    room_id = create_room(local, **{"preset": "public_chat", "name": "Before", **create})
    send_text(local, room_id, "local hello")
    user = env.peer.user_id()
    room = env.peer.join(env.node, room_id, user)
    return Joined(local, room_id, room, user)


def view(joined: Joined) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The local user's view: current state (type, state_key, event ID) and timeline IDs."""
    client = joined.local
    state = client.get(room_path(joined.room_id, "state"))
    assert client.status == 200, state
    messages = client.get(room_path(joined.room_id, "messages"),
                          params={"dir": "b", "limit": "100"})
    assert client.status == 200, messages
    return (sorted((e["type"], e["state_key"], e["event_id"]) for e in state),
            [e["event_id"] for e in messages["chunk"]])


def bodies_seen(joined: Joined, *, whole_history: bool = False) -> list[str]:
    """Message bodies the local user reads, newest first: the last 100 events, or with
    ``whole_history`` every page of /messages back to the room's start."""
    params = {"dir": "b", "limit": "100"}
    bodies: list[str] = []
    while True:
        messages = joined.local.get(room_path(joined.room_id, "messages"), params=params)
        bodies += [e["content"].get("body") for e in messages["chunk"]
                   if e["type"] == "m.room.message"]
        if not whole_history or not messages["chunk"] or "end" not in messages:
            return bodies
        params = {**params, "from": messages["end"]}


def local_sees_event(joined: Joined, event_id: str) -> bool:
    joined.local.get(room_path(joined.room_id, f"event/{quote(event_id)}"))
    return joined.local.status == 200


def assert_error(response: Any, status: int, errcode: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["errcode"] == errcode, response.text
