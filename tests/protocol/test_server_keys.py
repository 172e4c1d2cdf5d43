"""Server keys responses, notary signatures and key validity windows."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from protocol.errors import InvalidServerKeys, KeyFetchError
from protocol.server_keys import (
    MAX_KEY_VALIDITY_MS,
    ServerKeys,
    add_notary_signature,
    build_notary_query,
    build_server_keys_response,
    key_valid_at,
    merge_server_keys,
    parse_notary_response,
    parse_server_keys_response,
    unsatisfied_requests,
)
from protocol.signing import (
    encode_verify_key,
    generate_signing_key,
    get_verify_key,
    sign_json,
    verify_key_id,
)

NOW = 1_700_000_000_000
HOUR = 3600 * 1000
KEY = generate_signing_key("a_cur1")
KEY2 = generate_signing_key("a_cur2")
OLD = generate_signing_key("a_old1")
NOTARY_KEY = generate_signing_key("n_1")
NOTARY_VERIFY = {verify_key_id(NOTARY_KEY): get_verify_key(NOTARY_KEY)}


def _response(valid_until: int = NOW + 24 * HOUR, **kw: Any) -> dict[str, Any]:
    return build_server_keys_response(
        kw.get("server", "a.test"),
        kw.get("keys", [KEY]),
        kw.get("old", [(get_verify_key(OLD), "ed25519:a_old1", NOW - HOUR)]),
        valid_until,
    )


def test_round_trip_recovers_current_and_old_keys() -> None:
    keys = parse_server_keys_response(_response(), "a.test", NOW)
    assert keys.server_name == "a.test"
    assert keys.verify_keys["ed25519:a_cur1"].encode() == get_verify_key(KEY).encode()
    old_key, expired = keys.old_verify_keys["ed25519:a_old1"]
    assert old_key.encode() == get_verify_key(OLD).encode() and expired == NOW - HOUR
    assert keys.valid_until_ts == NOW + 24 * HOUR


def test_response_is_signed_by_every_current_key() -> None:
    body = _response(keys=[KEY, KEY2])
    assert set(body["signatures"]["a.test"]) == {"ed25519:a_cur1", "ed25519:a_cur2"}
    assert set(parse_server_keys_response(body, "a.test", NOW).verify_keys) == {
        "ed25519:a_cur1",
        "ed25519:a_cur2",
    }


def test_response_shape_matches_the_spec() -> None:
    body = _response()
    assert set(body) == {
        "server_name",
        "verify_keys",
        "old_verify_keys",
        "valid_until_ts",
        "signatures",
    }
    assert body["verify_keys"]["ed25519:a_cur1"] == {"key": encode_verify_key(KEY)}
    assert body["old_verify_keys"]["ed25519:a_old1"] == {
        "key": encode_verify_key(OLD),
        "expired_ts": NOW - HOUR,
    }


def test_tampered_response_is_refused() -> None:
    body = _response()
    body["old_verify_keys"]["ed25519:a_old1"]["expired_ts"] = NOW + 365 * 24 * HOUR
    with pytest.raises(InvalidServerKeys, match="bad signature"):
        parse_server_keys_response(body, "a.test", NOW)


def test_swapped_verify_key_is_refused() -> None:
    body = _response()
    body["verify_keys"]["ed25519:a_cur1"]["key"] = encode_verify_key(KEY2)
    with pytest.raises(InvalidServerKeys):
        parse_server_keys_response(body, "a.test", NOW)


def test_one_bad_signature_among_good_ones_is_refused() -> None:
    body = _response(keys=[KEY, KEY2])
    good = body["signatures"]["a.test"]["ed25519:a_cur1"]
    body["signatures"]["a.test"]["ed25519:a_cur2"] = good
    with pytest.raises(InvalidServerKeys, match="a_cur2"):
        parse_server_keys_response(body, "a.test", NOW)


def test_response_signed_only_by_an_unlisted_key_is_refused() -> None:
    body = _response()
    del body["signatures"]
    sign_json(body, "a.test", KEY2)  # KEY2 is not in verify_keys
    with pytest.raises(InvalidServerKeys, match="no signature by a known key"):
        parse_server_keys_response(body, "a.test", NOW)


def test_unsigned_response_is_refused() -> None:
    body = _response()
    del body["signatures"]
    with pytest.raises(InvalidServerKeys):
        parse_server_keys_response(body, "a.test", NOW)


def test_wrong_server_name_is_refused() -> None:
    body = _response(server="evil.test")
    with pytest.raises(InvalidServerKeys, match="evil.test"):
        parse_server_keys_response(body, "a.test", NOW)


def test_invalid_server_keys_is_a_key_fetch_error() -> None:
    with pytest.raises(KeyFetchError):
        parse_server_keys_response([], "a.test", NOW)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("valid_until_ts"),
        lambda b: b.update(valid_until_ts="soon"),
        lambda b: b.update(valid_until_ts=True),
        lambda b: b.pop("verify_keys"),
        lambda b: b.update(verify_keys=[]),
        lambda b: b["verify_keys"].update({"ed25519:bad key": {"key": "AAAA"}}),
        lambda b: b["verify_keys"].update({"ed25519:x": {"key": "bm90IGEga2V5"}}),
        lambda b: b["verify_keys"].update({"ed25519:x": "string"}),
        lambda b: b["old_verify_keys"]["ed25519:a_old1"].pop("expired_ts"),
        lambda b: b.update(old_verify_keys="nope"),
    ],
)
def test_malformed_response_shapes_are_refused(mutate: Any) -> None:
    body = _response()
    mutate(body)
    with pytest.raises(InvalidServerKeys):
        parse_server_keys_response(body, "a.test", NOW)


def test_keys_of_unknown_algorithms_are_skipped() -> None:
    body = _response()
    body["verify_keys"]["curve25519:x"] = {"key": "whatever"}
    del body["signatures"]
    sign_json(body, "a.test", KEY)
    assert set(parse_server_keys_response(body, "a.test", NOW).verify_keys) == {"ed25519:a_cur1"}


def test_valid_until_is_capped_at_seven_days() -> None:
    far = NOW + 365 * 24 * HOUR
    keys = parse_server_keys_response(_response(valid_until=far), "a.test", NOW)
    assert keys.valid_until_ts == NOW + MAX_KEY_VALIDITY_MS
    assert keys.published_valid_until_ts == far


def test_current_key_is_valid_until_valid_until_ts_inclusive() -> None:
    keys = parse_server_keys_response(_response(), "a.test", NOW)
    until = keys.valid_until_ts
    assert key_valid_at(keys, "ed25519:a_cur1", until) is not None
    assert key_valid_at(keys, "ed25519:a_cur1", until + 1) is None


def test_old_key_is_valid_only_up_to_expired_ts() -> None:
    keys = parse_server_keys_response(_response(), "a.test", NOW)
    assert key_valid_at(keys, "ed25519:a_old1", NOW - HOUR) is not None
    assert key_valid_at(keys, "ed25519:a_old1", NOW - HOUR + 1) is None


def test_validity_is_ignored_when_the_room_version_does_not_enforce_it() -> None:
    keys = parse_server_keys_response(_response(), "a.test", NOW)
    late = NOW + 30 * 24 * HOUR
    assert key_valid_at(keys, "ed25519:a_cur1", late, enforce_key_validity=False) is not None
    assert key_valid_at(keys, "ed25519:a_old1", late, enforce_key_validity=False) is not None


def test_unknown_key_id_is_not_valid() -> None:
    keys = parse_server_keys_response(_response(), "a.test", NOW)
    assert key_valid_at(keys, "ed25519:nope", NOW) is None


def test_build_refuses_a_key_both_current_and_old() -> None:
    with pytest.raises(ValueError, match="both current and old"):
        build_server_keys_response(
            "a.test", [KEY], [(get_verify_key(KEY), "ed25519:a_cur1", NOW)], NOW
        )


# Notary ------------------------------------------------------------------------------------
def _notarised(body: dict[str, Any]) -> dict[str, Any]:
    return add_notary_signature(body, "notary.test", NOTARY_KEY)


def test_notary_signature_keeps_the_origin_signature_and_copies() -> None:
    body = _response()
    signed = _notarised(body)
    assert set(signed["signatures"]) == {"a.test", "notary.test"}
    assert "notary.test" not in body["signatures"]


def test_notary_response_round_trip() -> None:
    answer = {"server_keys": [_notarised(_response())]}
    result = parse_notary_response(
        answer, {"a.test": {"ed25519:a_cur1": NOW}}, "notary.test", NOTARY_VERIFY, NOW
    )
    assert set(result) == {"a.test"}
    assert set(result["a.test"].verify_keys) == {"ed25519:a_cur1"}


def test_notary_response_without_notary_signature_is_refused() -> None:
    answer = {"server_keys": [_response()]}
    with pytest.raises(InvalidServerKeys, match="notary.test"):
        parse_notary_response(answer, {"a.test": {}}, "notary.test", NOTARY_VERIFY, NOW)


def test_notary_signature_by_an_untrusted_key_is_refused() -> None:
    rogue = generate_signing_key("n_1")  # same key id, different key material
    answer = {"server_keys": [add_notary_signature(_response(), "notary.test", rogue)]}
    with pytest.raises(InvalidServerKeys, match="bad signature by notary.test"):
        parse_notary_response(answer, {"a.test": {}}, "notary.test", NOTARY_VERIFY, NOW)


def test_notary_cannot_forge_the_origin_keys() -> None:
    forged = _response()
    forged["verify_keys"]["ed25519:a_cur1"]["key"] = encode_verify_key(KEY2)
    answer = {"server_keys": [_notarised(forged)]}
    with pytest.raises(InvalidServerKeys, match="a.test"):
        parse_notary_response(answer, {"a.test": {}}, "notary.test", NOTARY_VERIFY, NOW)


def test_notary_entries_for_unrequested_servers_are_ignored() -> None:
    other = _notarised(_response(server="b.test"))
    other["verify_keys"] = "garbage, but never looked at"
    answer = {"server_keys": [_notarised(_response()), other]}
    result = parse_notary_response(answer, {"a.test": {}}, "notary.test", NOTARY_VERIFY, NOW)
    assert set(result) == {"a.test"}


def test_notary_response_without_server_keys_list_is_refused() -> None:
    with pytest.raises(InvalidServerKeys, match="server_keys"):
        parse_notary_response({}, {"a.test": {}}, "notary.test", NOTARY_VERIFY, NOW)


def test_several_notary_entries_for_one_server_are_merged() -> None:
    stale = _notarised(_response(valid_until=NOW - HOUR, keys=[KEY2], old=[]))
    fresh = _notarised(_response())
    answer = {"server_keys": [stale, fresh]}
    keys = parse_notary_response(answer, {"a.test": {}}, "notary.test", NOTARY_VERIFY, NOW)[
        "a.test"
    ]
    assert set(keys.verify_keys) == {"ed25519:a_cur1"}
    assert keys.old_verify_keys["ed25519:a_cur2"][1] == NOW - HOUR
    assert "ed25519:a_old1" in keys.old_verify_keys


def test_merge_refuses_conflicting_key_material() -> None:
    a = ServerKeys("a.test", {"ed25519:k": get_verify_key(KEY)}, {}, NOW)
    b = ServerKeys("a.test", {"ed25519:k": get_verify_key(KEY2)}, {}, NOW - 1)
    with pytest.raises(InvalidServerKeys, match="conflicting"):
        merge_server_keys(a, b)


def test_unsatisfied_requests_reports_keys_not_valid_long_enough() -> None:
    answer = {"server_keys": [_notarised(_response())]}
    requested: dict[str, dict[str, int | None]] = {
        "a.test": {"ed25519:a_cur1": NOW + 2 * 24 * HOUR, "ed25519:gone": None},
        "b.test": {},
    }
    result = parse_notary_response(answer, requested, "notary.test", NOTARY_VERIFY, NOW)
    assert unsatisfied_requests(requested, result, NOW) == {
        "a.test": ["ed25519:a_cur1", "ed25519:gone"],
        "b.test": [],
    }


def test_notary_query_body_shape() -> None:
    assert build_notary_query({"a.test": {"ed25519:k": 5, "ed25519:j": None}, "b.test": {}}) == {
        "server_keys": {
            "a.test": {"ed25519:k": {"minimum_valid_until_ts": 5}, "ed25519:j": {}},
            "b.test": {},
        }
    }


def test_notary_vouching_for_itself_is_checked_against_the_trusted_keys() -> None:
    own = build_server_keys_response("notary.test", [NOTARY_KEY], [], NOW + HOUR)
    result = parse_notary_response(
        {"server_keys": [copy.deepcopy(own)]},
        {"notary.test": {}},
        "notary.test",
        NOTARY_VERIFY,
        NOW,
    )
    assert set(result["notary.test"].verify_keys) == {"ed25519:n_1"}


def test_notary_vouching_for_itself_with_an_unknown_key_is_refused() -> None:
    rogue = generate_signing_key("n_2")
    own = build_server_keys_response("notary.test", [rogue], [], NOW + HOUR)
    with pytest.raises(InvalidServerKeys, match="no signature by a known key of notary.test"):
        parse_notary_response(
            {"server_keys": [own]}, {"notary.test": {}}, "notary.test", NOTARY_VERIFY, NOW
        )
