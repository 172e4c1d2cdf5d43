"""Every class of bad federation input, sent by a fake peer to a real node over TLS.

The node pins the keys of two fake peers and allows only the first. Each test uses a fresh
public room made by a local user (named, with one message) that the allowed peer has joined,
sends one kind of bad input, checks the error the spec asks for, and checks through the client
API that the local user's view of the room (state and timeline) is what it was before.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from protocol.events import Event
from protocol.signing import generate_signing_key
from tests.fake_peer import FED_V1, FakePeer
from tests.peer_env import (
    Env,
    Joined,
    assert_error,
    bodies_seen,
    join_public_room,
    local_sees_event,
    peer_env,
    view,
)
from tests.room_helpers import create_room, room_path, send_text, sync


@pytest.fixture(scope="module")
def env(tmp_path_factory: Any) -> Iterator[Env]:
    with peer_env(tmp_path_factory.mktemp("bad_input")) as running:
        yield running


@pytest.fixture
def joined(env: Env) -> Joined:
    return join_public_room(env)


# Per-PDU checks -------------------------------------------------------------------------------
def test_pdu_with_forged_signature_is_refused_and_never_seen(env: Env, joined: Joined) -> None:
    before = view(joined)
    impostor = generate_signing_key(env.peer.signing_key.version)
    forged = env.peer.message(joined.room, joined.remote_user, "forged", key=impostor)
    results = env.peer.send_pdus(env.node, joined.room, forged)
    assert "error" in results[forged.event_id], results
    assert not local_sees_event(joined, forged.event_id)
    assert view(joined) == before


def test_pdu_altered_after_signing_is_kept_only_redacted(env: Env, joined: Joined) -> None:
    event = env.peer.message(joined.room, joined.remote_user, "as signed")
    altered = copy.deepcopy(event.pdu)
    altered["content"]["body"] = "altered in transit"
    response = env.peer.send_transaction(env.node, env.peer.transaction([altered]))
    assert response.status_code == 200, response.text
    assert response.json()["pdus"] == {event.event_id: {}}
    seen = joined.local.get(room_path(joined.room_id, f"event/{quote(event.event_id)}"))
    assert joined.local.status == 200, seen
    assert seen["content"] == {}
    assert not {"as signed", "altered in transit"} & set(bodies_seen(joined))


def test_state_change_without_power_is_rejected(env: Env, joined: Joined) -> None:
    before = view(joined)
    rename = env.peer.build_event(joined.room, joined.remote_user, "m.room.name",
                                  {"name": "Hijacked"}, state_key="")
    results = env.peer.send_pdus(env.node, joined.room, rename)
    assert "error" in results[rename.event_id], results
    assert joined.local.get(room_path(joined.room_id, "state/m.room.name")) == {"name": "Before"}
    assert view(joined) == before


def test_message_from_user_not_in_room_is_rejected(env: Env, joined: Joined) -> None:
    before = view(joined)
    stranger = env.peer.user_id()
    message = env.peer.message(joined.room, stranger, "not a member")
    results = env.peer.send_pdus(env.node, joined.room, message)
    assert "error" in results[message.event_id], results
    assert not local_sees_event(joined, message.event_id)
    assert view(joined) == before


# Transactions ---------------------------------------------------------------------------------
def test_transaction_with_more_than_50_pdus_is_refused(env: Env, joined: Joined) -> None:
    before = view(joined)
    pdus = [env.peer.message(joined.room, joined.remote_user, f"bulk {i}") for i in range(51)]
    response = env.peer.send_transaction(env.node, env.peer.transaction(list(pdus)))
    assert response.status_code == 400, response.text
    assert view(joined) == before


def test_transaction_with_more_than_100_edus_is_refused(env: Env, joined: Joined) -> None:
    before = view(joined)
    message = env.peer.message(joined.room, joined.remote_user, "with many EDUs")
    typing = {"edu_type": "m.typing", "content": {
        "room_id": joined.room_id, "user_id": joined.remote_user, "typing": True}}
    response = env.peer.send_transaction(
        env.node, env.peer.transaction([message], [typing] * 101))
    assert response.status_code == 400, response.text
    assert view(joined) == before


def test_server_not_on_allow_list_is_refused_before_processing(env: Env, joined: Joined
                                                              ) -> None:
    before = view(joined)
    # A valid PDU of the allowed peer, relayed by the refused one: it must not get in that way.
    message = env.peer.message(joined.room, joined.remote_user, "relayed")
    response = env.denied.send_transaction(env.node, env.denied.transaction([message]))
    assert_error(response, 403, "M_FORBIDDEN")
    assert view(joined) == before
    # The same PDU from the allowed peer is accepted: only the relay was refused.
    assert env.peer.send_pdus(env.node, joined.room, message) == {message.event_id: {}}


def test_replayed_transaction_id_gets_first_answer_and_applies_nothing(env: Env,
                                                                       joined: Joined) -> None:
    first = env.peer.message(joined.room, joined.remote_user, "first")
    txn_id = env.peer.next_txn_id()
    answer = env.peer.send_transaction(env.node, env.peer.transaction([first]), txn_id)
    assert answer.status_code == 200 and answer.json() == {"pdus": {first.event_id: {}}}
    joined.room.track(first)
    second = env.peer.message(joined.room, joined.remote_user, "second")
    replay = env.peer.send_transaction(env.node, env.peer.transaction([first, second]), txn_id)
    assert replay.status_code == 200
    assert replay.json() == answer.json()
    assert bodies_seen(joined).count("first") == 1
    assert not local_sees_event(joined, second.event_id)


# Request authentication -----------------------------------------------------------------------
def _header(env: Env, case: str, uri: str, body: dict[str, Any]) -> str:
    peer, node = env.peer, env.node
    good = peer.authorization(node.server_name, "PUT", uri, body)
    params = dict(part.split("=", 1) for part in good[len("X-Matrix "):].split(","))
    if case == "missing_sig":
        return "X-Matrix " + ",".join(f"{k}={v}" for k, v in params.items() if k != "sig")
    if case == "bad_key_id":
        return good.replace(f'key="{peer.key_id}"', 'key="rsa:1"')
    if case == "unknown_key_id":
        other = generate_signing_key("other")
        return peer.authorization(node.server_name, "PUT", uri, body, key=other)
    if case == "garbage":
        return "X-Matrix !!! not, a header \"at all"
    if case == "wrong_scheme":
        return "Bearer " + params["sig"].strip('"')
    if case == "wrong_destination":
        return peer.authorization("elsewhere.example", "PUT", uri, body)
    if case == "missing":
        return ""
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing_sig", "bad_key_id", "unknown_key_id", "garbage",
                                  "wrong_scheme", "wrong_destination", "missing"])
def test_malformed_x_matrix_header_is_unauthorized(env: Env, joined: Joined, case: str) -> None:
    before = view(joined)
    message = env.peer.message(joined.room, joined.remote_user, f"header {case}")
    body = env.peer.transaction([message])
    txn_id = env.peer.next_txn_id()
    header = _header(env, case, f"{FED_V1}/send/{txn_id}", body)
    response = env.peer.send_transaction(env.node, body, txn_id, authorization=header)
    assert_error(response, 401, "M_UNAUTHORIZED")
    assert view(joined) == before


def test_body_other_than_the_signed_one_is_unauthorized(env: Env, joined: Joined) -> None:
    before = view(joined)
    signed = env.peer.transaction([env.peer.message(joined.room, joined.remote_user, "signed")])
    sent = env.peer.transaction([env.peer.message(joined.room, joined.remote_user, "swapped")])
    response = env.peer.send_transaction(env.node, sent, sign_body=signed)
    assert_error(response, 401, "M_UNAUTHORIZED")
    assert view(joined) == before


# Joining --------------------------------------------------------------------------------------
def test_make_join_for_a_user_of_another_server_is_forbidden(env: Env, joined: Joined) -> None:
    before = view(joined)
    victim = f"@victim:{env.denied.server_name}"
    response = env.peer.make_join(env.node, joined.room_id, victim)
    assert_error(response, 403, "M_FORBIDDEN")
    assert view(joined) == before


def test_make_join_for_an_invite_only_room_is_forbidden(env: Env) -> None:
    local = env.node.register()
    room_id = create_room(local, preset="private_chat")
    response = env.peer.make_join(env.node, room_id, env.peer.user_id())
    assert_error(response, 403, "M_FORBIDDEN")
    assert list(local.get(room_path(room_id, "joined_members"))["joined"]) == [local.user_id]


def test_send_join_with_event_id_not_matching_path_is_refused(env: Env) -> None:
    local = env.node.register()
    room_id = create_room(local, preset="public_chat")
    user = env.peer.user_id()
    join = env.peer.signed_join(env.node, room_id, user)
    wrong_id = "$" + "A" * 43
    response = env.peer.send_join(env.node, room_id, wrong_id, join.pdu)
    assert response.status_code == 400, response.text
    assert "errcode" in response.json()
    assert list(local.get(room_path(room_id, "joined_members"))["joined"]) == [local.user_id]
    local.get(room_path(room_id, f"state/m.room.member/{quote(user)}"))
    assert local.status == 404


# More classes of bad input --------------------------------------------------------------------
def test_malformed_pdu_does_not_stop_the_rest_of_its_transaction(env: Env, joined: Joined
                                                                 ) -> None:
    good = env.peer.message(joined.room, joined.remote_user, "good neighbour")
    broken = copy.deepcopy(good.pdu)
    broken["depth"] = "deep"
    response = env.peer.send_transaction(
        env.node, env.peer.transaction([broken, "not an object", good]))
    assert response.status_code == 200, response.text
    assert response.json()["pdus"][good.event_id] == {}
    assert bodies_seen(joined).count("good neighbour") == 1


def test_pdu_in_the_name_of_a_local_user_is_refused(env: Env, joined: Joined) -> None:
    before = view(joined)
    spoof = env.peer.message(joined.room, joined.local.user_id, "I never said this")
    results = env.peer.send_pdus(env.node, joined.room, spoof)
    assert "error" in results[spoof.event_id], results
    assert view(joined) == before


def test_event_of_a_server_outside_the_allow_list_relayed_by_a_peer_is_refused(
        env: Env, joined: Joined) -> None:
    before = view(joined)
    outsider = FakePeer("127.0.0.1:3")  # neither allowed nor pinned
    user = outsider.user_id()
    join = outsider.build_event(joined.room, user, "m.room.member", {"membership": "join"},
                                state_key=user)
    results = env.peer.send_pdus(env.node, joined.room, join)
    assert "error" in results[join.event_id], results
    assert view(joined) == before


def test_pdu_with_unknown_prev_events_is_rejected(env: Env, joined: Joined) -> None:
    before = view(joined)
    orphan = env.peer.message(joined.room, joined.remote_user, "orphan",
                              prev_event_ids=["$" + "B" * 43])
    results = env.peer.send_pdus(env.node, joined.room, orphan)
    assert "error" in results[orphan.event_id], results
    assert view(joined) == before


def test_message_built_before_a_ban_is_soft_failed(env: Env, joined: Joined) -> None:
    joined.local.post(room_path(joined.room_id, "ban"), {"user_id": joined.remote_user})
    assert joined.local.status == 200
    before = view(joined)
    # The peer has not seen the ban: its message passes auth against the state before it.
    late = env.peer.message(joined.room, joined.remote_user, "after my ban")
    env.peer.send_pdus(env.node, joined.room, late)
    assert "after my ban" not in bodies_seen(joined)
    assert view(joined) == before


def test_unprivileged_remote_redaction_leaves_local_message_intact(env: Env, joined: Joined
                                                                   ) -> None:
    target = send_text(joined.local, joined.room_id, "keep me")
    joined.room.extremities = [target]  # the peer builds on the local message
    redaction = env.peer.build_event(joined.room, joined.remote_user, "m.room.redaction",
                                     {"redacts": target})
    env.peer.send_pdus(env.node, joined.room, redaction)
    seen = joined.local.get(room_path(joined.room_id, f"event/{quote(target)}"))
    assert seen["content"].get("body") == "keep me", seen


def test_remote_user_may_redact_their_own_message(env: Env, joined: Joined) -> None:
    message = env.peer.message(joined.room, joined.remote_user, "mine to redact")
    env.peer.send_pdus(env.node, joined.room, message)
    redaction = env.peer.build_event(joined.room, joined.remote_user, "m.room.redaction",
                                     {"redacts": message.event_id})
    env.peer.send_pdus(env.node, joined.room, redaction)
    seen = joined.local.get(room_path(joined.room_id, f"event/{quote(message.event_id)}"))
    assert seen["content"] == {}, seen
    assert seen["unsigned"]["redacted_because"]["event_id"] == redaction.event_id


def test_edu_about_a_user_of_another_server_is_ignored(env: Env, joined: Joined) -> None:
    def typing(user_id: str) -> dict[str, Any]:
        return {"edu_type": "m.typing",
                "content": {"room_id": joined.room_id, "user_id": user_id, "typing": True}}

    response = env.peer.send_transaction(env.node, env.peer.transaction(
        [], [typing(joined.local.user_id), typing(joined.remote_user)]))
    assert response.status_code == 200, response.text
    body = sync(joined.local)
    ephemeral = body["rooms"]["join"][joined.room_id]["ephemeral"]["events"]
    typing_ids = [e["content"]["user_ids"] for e in ephemeral if e["type"] == "m.typing"]
    assert typing_ids == [[joined.remote_user]]


def test_transaction_origin_other_than_the_signer_is_refused(env: Env, joined: Joined) -> None:
    before = view(joined)
    body = env.peer.transaction([env.peer.message(joined.room, joined.remote_user, "origin")])
    body["origin"] = env.denied.server_name
    response = env.peer.send_transaction(env.node, body)
    assert response.status_code == 400, response.text
    assert view(joined) == before


def test_transaction_body_that_is_not_json_is_refused(env: Env) -> None:
    txn_id = env.peer.next_txn_id()
    header = env.peer.authorization(env.node.server_name, "PUT", f"{FED_V1}/send/{txn_id}", None)
    response = env.peer.send_transaction(env.node, None, txn_id, authorization=header,
                                         raw=b"{not json")
    assert_error(response, 400, "M_NOT_JSON")


# Size limits: the spec's 255-byte identifiers and 65,536-byte PDUs --------------------------
def _assert_refused_and_room_unchanged(env: Env, joined: Joined, event: Event) -> None:
    before = view(joined)
    results = env.peer.send_pdus(env.node, joined.room, event)
    assert "error" in results[event.event_id], results
    assert not local_sees_event(joined, event.event_id)
    assert view(joined) == before


def test_pdu_larger_than_65536_bytes_is_refused(env: Env, joined: Joined) -> None:
    huge = env.peer.message(joined.room, joined.remote_user, "x" * 66_000)
    _assert_refused_and_room_unchanged(env, joined, huge)


@pytest.mark.parametrize("field", ["type", "state_key"])
def test_state_event_with_a_field_over_255_bytes_is_refused(env: Env, joined: Joined,
                                                           field: str) -> None:
    long_value = "m." + "l" * 254
    event = env.peer.build_event(
        joined.room, joined.remote_user, long_value if field == "type" else "m.custom",
        {"v": 1}, state_key=long_value if field == "state_key" else "")
    _assert_refused_and_room_unchanged(env, joined, event)


def test_pdu_from_a_user_id_outside_the_grammar_is_refused(env: Env, joined: Joined) -> None:
    sender = f"@bad\nname:{env.peer.server_name}"
    _assert_refused_and_room_unchanged(
        env, joined, env.peer.message(joined.room, sender, "odd sender"))


def test_make_join_for_a_user_id_outside_the_grammar_is_400(env: Env, joined: Joined) -> None:
    user = quote(f"@bad name:{env.peer.server_name}")
    response = env.peer.request(env.node, "GET",
                                f"{FED_V1}/make_join/{quote(joined.room_id)}/{user}")
    assert_error(response, 400, "M_INVALID_PARAM")
