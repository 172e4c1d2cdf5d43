"""A small fuzz of the federation endpoints: hypothesis-generated, correctly signed requests from
an allowed peer against a real node, on both engines.

The invariant for every request: the node answers below 500, with a Matrix error whenever it
refuses, and the room the peer shares with a local user is unchanged (state and timeline).
Bodies are arbitrary JSON or valid events with one field replaced; the events are sent by a
user of the peer that is not in the room, so that none of them may be accepted. Bounded to a few
dozen examples per endpoint (well under a minute in all).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fake_peer import FED_V1
from tests.peer_env import ENGINES, Env, Joined, join_public_room, peer_env, view

EXAMPLES = 25
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12)
event_ids = text | st.just("$") | text.map(lambda t: "$" + t)
PDU_FIELDS = ["auth_events", "content", "depth", "hashes", "origin_server_ts", "prev_events",
              "room_id", "sender", "signatures", "state_key", "type", "unsigned", "redacts"]


@pytest.fixture(scope="module", params=ENGINES)
def env(request: Any, tmp_path_factory: Any) -> Iterator[Env]:
    with peer_env(tmp_path_factory.mktemp("fuzz"), request.param) as running:
        yield running


@pytest.fixture(scope="module")
def joined(env: Env) -> Joined:
    return join_public_room(env)


@pytest.fixture(scope="module")
def stranger_pdu(env: Env, joined: Joined) -> dict[str, Any]:
    """A correctly signed message of a user of the peer who is not in the room."""
    return env.peer.message(joined.room, env.peer.user_id(), "from outside").pdu


def assert_handled(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "errcode" in response.json(), response.text


def assert_transaction_handled(response: Any) -> None:
    """Handled as a whole, and no PDU of it failed inside the node (an internal error is
    reported per PDU, under a 200)."""
    assert_handled(response)
    if response.status_code == 200:
        results = response.json()["pdus"].values()
        assert not [r for r in results if "internal" in str(r.get("error", ""))], response.text


def mutated(pdu: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The PDU with one field replaced or removed, or any JSON value at all."""
    replace = st.tuples(st.sampled_from(PDU_FIELDS), json_values).map(
        lambda change: {**pdu, change[0]: change[1]})
    remove = st.sampled_from(PDU_FIELDS).map(
        lambda field: {k: v for k, v in pdu.items() if k != field})
    return replace | remove | json_values


@st.composite
def transactions(draw: Any, pdu: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = draw(st.dictionaries(text, json_values, max_size=3))
    body["pdus"] = draw(st.lists(mutated(pdu), max_size=3) | json_values)
    edus = st.fixed_dictionaries({"edu_type": st.sampled_from(
        ["m.typing", "m.receipt", "m.device_list_update", "m.direct_to_device",
         "m.signing_key_update", "m.presence"]) | text, "content": json_values})
    body["edus"] = draw(st.lists(edus | json_values, max_size=3) | json_values)
    return body


def test_fuzzed_transactions_change_nothing(env: Env, joined: Joined,
                                            stranger_pdu: dict[str, Any]) -> None:
    before = view(joined)

    @FUZZ
    @given(transactions(stranger_pdu))
    def check(body: dict[str, Any]) -> None:
        assert_transaction_handled(env.peer.send_transaction(env.node, body))

    check()
    assert view(joined) == before


@pytest.mark.parametrize("endpoint", ["make_join", "make_leave"])
def test_fuzzed_membership_templates_change_nothing(env: Env, joined: Joined,
                                                    endpoint: str) -> None:
    before = view(joined)

    @FUZZ
    @given(text | text.map(lambda t: f"@{t}:{env.peer.server_name}"), st.lists(text, max_size=3))
    def check(user_id: str, versions: list[str]) -> None:
        path = f"{FED_V1}/{endpoint}/{quote(joined.room_id, safe='')}/{quote(user_id, safe='')}"
        assert_handled(env.peer.request(env.node, "GET", path, params={"ver": versions}))

    check()
    assert view(joined) == before


def test_fuzzed_history_requests_change_nothing(env: Env, joined: Joined) -> None:
    before = view(joined)
    room = quote(joined.room_id, safe="")

    @FUZZ
    @given(st.lists(event_ids, max_size=3), text | st.integers(-5, 500).map(str))
    def backfill(start: list[str], limit: str) -> None:
        assert_handled(env.peer.request(env.node, "GET", f"{FED_V1}/backfill/{room}",
                                        params={"v": start, "limit": limit}))

    @FUZZ
    @given(st.dictionaries(st.sampled_from(["earliest_events", "latest_events", "limit"]) | text,
                           json_values, max_size=4))
    def missing(body: dict[str, Any]) -> None:
        assert_handled(env.peer.request(env.node, "POST", f"{FED_V1}/get_missing_events/{room}",
                                        body))

    @FUZZ
    @given(event_ids, st.sampled_from(["event", "state_ids", "state", "event_auth"]))
    def by_id(event_id: str, endpoint: str) -> None:
        encoded = quote(event_id, safe="")
        if endpoint == "event":
            path, params = f"{FED_V1}/event/{encoded}", None
        elif endpoint == "event_auth":
            path, params = f"{FED_V1}/event_auth/{room}/{encoded}", None
        else:
            path, params = f"{FED_V1}/{endpoint}/{room}", {"event_id": event_id}
        assert_handled(env.peer.request(env.node, "GET", path, params=params))

    backfill()
    missing()
    by_id()
    assert view(joined) == before
