"""/sync checked against a model, on a real node of each engine (hypothesis, stateful).

Two users in three rooms send messages, change topics and names, send read receipts, type,
set global and room account data and send each other to-device messages; at most once per run
the node restarts (a clean stop).  Each user follows its own ``next_batch`` with a filter whose
timeline limit is 1 to 5, so most syncs are gappy.  After every sync the user's view must
match the model:

- each timeline event of a joined room arrives exactly once and in order, or the room says
  ``limited: true`` and ``/messages?dir=b`` from its ``prev_batch`` down to the since token
  returns exactly the events left out;
- the typing users and read receipts it has seen are the current ones;
- its global and room account data hold the latest values;
- each to-device message sent to it has arrived exactly once, in the order sent.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from tests.node_harness import Client, NodeProcess, node_on_engine
from tests.room_helpers import V3, create_room, join, room_path, send_text, sync

ROOMS = 3
ACCOUNT_DATA_TYPES = ("org.example.a", "org.example.b")
TO_DEVICE_TYPE = "org.example.ping"
STATE_TYPES = ("m.room.topic", "m.room.name")
TYPING_TIMEOUT_MS = 120_000  # longer than a run: typing ends only when the model says so

# About half a minute per engine on two cores.
EXAMPLES = 50
STEPS = 50

USER = st.integers(0, 1)
ROOM = st.integers(0, ROOMS - 1)


@dataclass
class View:
    """What one user has learnt from following its ``next_batch``."""

    client: Client
    token: str
    seen: dict[str, int]  # room -> how many of the room's model events it has received
    typing: dict[str, list[str]] = field(default_factory=dict)
    receipts: dict[tuple[str, str], str] = field(default_factory=dict)  # (room, user) -> event
    account_data: dict[str, Any] = field(default_factory=dict)
    room_account_data: dict[tuple[str, str], Any] = field(default_factory=dict)
    to_device: list[int] = field(default_factory=list)
    state: dict[tuple[str, str], Any] = field(default_factory=dict)  # (room, type) -> content


class SyncModel(RuleBasedStateMachine):
    node: NodeProcess  # the node of the engine under test, set by the test

    def __init__(self) -> None:
        super().__init__()
        self.users = [self.node.register(), self.node.register()]
        alice, bob = self.users
        powers = {"users": {bob.user_id: 100}}
        self.rooms = [create_room(alice, preset="public_chat",
                                  power_level_content_override=powers) for _ in range(ROOMS)]
        for room_id in self.rooms:
            join(bob, room_id)
        self.views = [View(u, sync(u)["next_batch"], dict.fromkeys(self.rooms, 0))
                      for u in self.users]
        # The model: what the node holds.
        self.events: dict[str, list[str]] = {r: [] for r in self.rooms}
        self.typing: dict[str, set[str]] = {r: set() for r in self.rooms}
        self.state: dict[tuple[str, str], Any] = {}  # (room, topic or name) -> content
        self.receipts: dict[tuple[str, str], str] = {}
        self.account_data: list[dict[str, Any]] = [{}, {}]
        self.room_account_data: list[dict[tuple[str, str], Any]] = [{}, {}]
        self.to_device: list[list[int]] = [[], []]
        self.serial = itertools.count()
        self.syncs = 0
        self.restarted = False

    # -- changes ----------------------------------------------------------------------------------
    @rule(user=USER, room=ROOM)
    def send_message(self, user: int, room: int) -> None:
        room_id = self.rooms[room]
        self.events[room_id].append(send_text(self.users[user], room_id, f"m{next(self.serial)}"))

    @rule(user=USER, room=ROOM, event_type=st.sampled_from(STATE_TYPES))
    def change_state(self, user: int, room: int, event_type: str) -> None:
        room_id = self.rooms[room]
        key = "topic" if event_type == "m.room.topic" else "name"
        client = self.users[user]
        content = {key: f"{key} {next(self.serial)}"}
        body = client.put(room_path(room_id, f"state/{event_type}"), content)
        assert client.status == 200, body
        self.events[room_id].append(body["event_id"])
        self.state[(room_id, event_type)] = content

    @rule(user=USER, room=ROOM)
    def read_receipt(self, user: int, room: int) -> None:
        room_id = self.rooms[room]
        if not self.events[room_id]:
            return
        latest = self.events[room_id][-1]
        client = self.users[user]
        body = client.post(room_path(room_id, f"receipt/m.read/{quote(latest)}"), {})
        assert client.status == 200, body
        self.receipts[(room_id, client.user_id)] = latest

    @rule(user=USER, room=ROOM, typing=st.booleans())
    def set_typing(self, user: int, room: int, typing: bool) -> None:
        room_id, client = self.rooms[room], self.users[user]
        body = client.put(room_path(room_id, f"typing/{quote(client.user_id)}"),
                          {"typing": typing, "timeout": TYPING_TIMEOUT_MS})
        assert client.status == 200, body
        (self.typing[room_id].add if typing else self.typing[room_id].discard)(client.user_id)

    @rule(user=USER, data_type=st.sampled_from(ACCOUNT_DATA_TYPES))
    def set_account_data(self, user: int, data_type: str) -> None:
        client, content = self.users[user], {"v": next(self.serial)}
        body = client.put(f"{V3}/user/{quote(client.user_id)}/account_data/{data_type}", content)
        assert client.status == 200, body
        self.account_data[user][data_type] = content

    @rule(user=USER, room=ROOM, data_type=st.sampled_from(ACCOUNT_DATA_TYPES))
    def set_room_account_data(self, user: int, room: int, data_type: str) -> None:
        client, room_id, content = self.users[user], self.rooms[room], {"v": next(self.serial)}
        body = client.put(f"{V3}/user/{quote(client.user_id)}/rooms/{quote(room_id)}"
                          f"/account_data/{data_type}", content)
        assert client.status == 200, body
        self.room_account_data[user][(room_id, data_type)] = content

    @rule(sender=USER)
    def send_to_device(self, sender: int) -> None:
        client, recipient = self.users[sender], self.users[1 - sender]
        number = next(self.serial)
        body = client.put(f"{V3}/sendToDevice/{TO_DEVICE_TYPE}/t{number}", {
            "messages": {recipient.user_id: {recipient.device_id: {"n": number}}}})
        assert client.status == 200, body
        self.to_device[1 - sender].append(number)

    @precondition(lambda self: not self.restarted and self.syncs >= 2)
    @rule()
    def restart(self) -> None:
        """A clean stop and start: typing is forgotten, every token stays valid."""
        self.node.stop()
        self.node.start()
        self.restarted = True
        for users in self.typing.values():
            users.clear()

    # -- the check ----------------------------------------------------------------------------------
    @rule(user=USER, limit=st.integers(1, 5))
    def sync(self, user: int, limit: int) -> None:
        view = self.views[user]
        since = view.token
        body = sync(view.client, since, filter=json.dumps({"room": {"timeline": {"limit": limit}}}))
        joined = body["rooms"]["join"]
        for room_id in self.rooms:
            section = joined.get(room_id, {})
            self._check_timeline(view, room_id, section.get("timeline"), since, limit)
            _learn_state(view, room_id, section)
            _learn_ephemeral(view, room_id, section.get("ephemeral", {}).get("events", []))
            for event in section.get("account_data", {}).get("events", []):
                view.room_account_data[(room_id, event["type"])] = event["content"]
        for event in body["account_data"]["events"]:
            view.account_data[event["type"]] = event["content"]
        view.to_device.extend(e["content"]["n"] for e in body["to_device"]["events"]
                              if e["type"] == TO_DEVICE_TYPE)
        view.token = body["next_batch"]
        self.syncs += 1

        me = view.client.user_id
        assert {r: u for r, u in view.typing.items() if u} \
            == {r: sorted(u) for r, u in self.typing.items() if u}, "typing users"
        assert view.receipts == self.receipts, "read receipts"
        assert {k: c for k, c in view.state.items() if k[1] in STATE_TYPES} == self.state, \
            "room topics and names"
        assert {t: c for t, c in view.account_data.items() if t in ACCOUNT_DATA_TYPES} \
            == self.account_data[user], f"global account data of {me}"
        assert view.room_account_data == self.room_account_data[user], \
            f"room account data of {me}"
        assert view.to_device == self.to_device[user], f"to-device messages to {me}"

    def _check_timeline(self, view: View, room_id: str, timeline: dict[str, Any] | None,
                        since: str, limit: int) -> None:
        """The room's new events arrived once and in order, or its gap is exactly what
        /messages returns from ``prev_batch`` down to ``since``."""
        new = self.events[room_id][view.seen[room_id]:]
        got = [e["event_id"] for e in (timeline or {}).get("events", [])]
        if timeline is None or not timeline["limited"]:
            assert got == new, f"{room_id}: not limited, sent {new}, got {got}"
        else:
            assert len(got) == limit and len(new) > limit, \
                f"{room_id}: limited to {limit}, sent {new}, got {got}"
            assert got == new[-limit:], f"{room_id}: sent {new}, got {got}"
            page = view.client.get(room_path(room_id, "messages"), params={
                "dir": "b", "from": timeline["prev_batch"], "to": since, "limit": 1000})
            assert view.client.status == 200, page
            gap = [e["event_id"] for e in reversed(page["chunk"])]
            assert gap == new[:-limit], f"{room_id}: gap {new[:-limit]}, /messages {gap}"
        view.seen[room_id] = len(self.events[room_id])


def _learn_state(view: View, room_id: str, section: dict[str, Any]) -> None:
    """The room's state as a client keeps it: the state section, then the timeline's state
    events in order."""
    events = section.get("state", {}).get("events", []) + section.get(
        "timeline", {}).get("events", [])
    for event in events:
        if "state_key" in event:
            view.state[(room_id, event["type"])] = event["content"]


def _learn_ephemeral(view: View, room_id: str, events: list[dict[str, Any]]) -> None:
    for event in events:
        if event["type"] == "m.typing":
            view.typing[room_id] = sorted(event["content"]["user_ids"])
        elif event["type"] == "m.receipt":
            for event_id, kinds in event["content"].items():
                for user_id in kinds.get("m.read", {}):
                    view.receipts[(room_id, user_id)] = event_id


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def model_node(request: Any, tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """A node of this module's own (the model restarts it), on each engine."""
    with node_on_engine(request.param,
                        tmp_path_factory.mktemp(f"sync_model_{request.param}")) as node:
        yield node


def test_sync_matches_the_model(model_node: NodeProcess) -> None:
    machine = type("SyncModelOnNode", (SyncModel,), {"node": model_node})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True, database=None,
        deadline=None, suppress_health_check=list(HealthCheck),
        # Every example runs against the real node: shrinking would take minutes, so a failure
        # is reported with the steps of the run that found it.
        phases=[Phase.explicit, Phase.reuse, Phase.generate]))
