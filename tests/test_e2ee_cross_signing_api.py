"""``/keys/device_signing/upload`` and ``/keys/signatures/upload`` against a real node on both
engines: first upload without UIA, replacement behind password UIA, refused keys and signatures,
signatures of own devices, of the own master key and of another user's master key, and what
``/keys/query`` then shows."""

from __future__ import annotations

import copy
import os
import uuid
from typing import Any

from signedjson.key import (
    decode_signing_key_base64,
    encode_signing_key_base64,
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
)
from signedjson.sign import sign_json
from unpaddedbase64 import encode_base64

from tests.node_harness import Client, NodeProcess

V3 = "/_matrix/client/v3"
DEVICE_SIGNING = f"{V3}/keys/device_signing/upload"
SIGNATURES = f"{V3}/keys/signatures/upload"
KEYS_UPLOAD = f"{V3}/keys/upload"
KEYS_QUERY = f"{V3}/keys/query"
PASSWORD = "correct horse 1"


class Ed25519:
    """A signing key whose key id is ``ed25519:<name>`` (the public key unless named)."""

    def __init__(self, user_id: str, name: str | None = None) -> None:
        raw = generate_signing_key("tmp")
        self.public = encode_verify_key_base64(get_verify_key(raw))
        self.name = name or self.public
        self.key = decode_signing_key_base64("ed25519", self.name, encode_signing_key_base64(raw))
        self.key_id = f"ed25519:{self.name}"
        self.user_id = user_id

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with this key's signature added."""
        return sign_json(copy.deepcopy(obj), self.user_id, self.key)


class CrossSigningKeys:
    """A user's master, self-signing and user-signing keys, the latter two signed by the
    master key."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.master = Ed25519(user_id)
        self.self_signing = Ed25519(user_id)
        self.user_signing = Ed25519(user_id)

    def public(self, key: Ed25519, usage: str) -> dict[str, Any]:
        return {"user_id": self.user_id, "usage": [usage], "keys": {key.key_id: key.public}}

    @property
    def master_key(self) -> dict[str, Any]:
        return self.public(self.master, "master")

    @property
    def self_signing_key(self) -> dict[str, Any]:
        return self.master.sign(self.public(self.self_signing, "self_signing"))

    @property
    def user_signing_key(self) -> dict[str, Any]:
        return self.master.sign(self.public(self.user_signing, "user_signing"))

    def upload_body(self, **extra: Any) -> dict[str, Any]:
        return {"master_key": self.master_key, "self_signing_key": self.self_signing_key,
                "user_signing_key": self.user_signing_key, **extra}


def fresh_user(node: NodeProcess) -> Client:
    return node.register("x" + uuid.uuid4().hex[:10], PASSWORD)


def password_auth(user: Client, session: str) -> dict[str, Any]:
    return {"type": "m.login.password", "password": PASSWORD, "session": session,
            "identifier": {"type": "m.id.user", "user": user.user_id}}


def upload_cross_signing(user: Client) -> CrossSigningKeys:
    keys = CrossSigningKeys(user.user_id)
    body = user.post(DEVICE_SIGNING, keys.upload_body())
    assert user.status == 200, body
    return keys


def device_keys_of(user: Client) -> tuple[dict[str, Any], Ed25519]:
    """Identity keys for the client's device, signed by the device, and its signing key."""
    device = Ed25519(user.user_id, user.device_id)
    keys = {"user_id": user.user_id, "device_id": user.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{user.device_id}": encode_base64(os.urandom(32)),
                     device.key_id: device.public}}
    return device.sign(keys), device


def upload_device_keys(user: Client) -> tuple[dict[str, Any], Ed25519]:
    keys, device = device_keys_of(user)
    body = user.post(KEYS_UPLOAD, {"device_keys": keys})
    assert user.status == 200, body
    return keys, device


def query(user: Client, *user_ids: str) -> dict[str, Any]:
    body = user.post(KEYS_QUERY, {"device_keys": {u: [] for u in user_ids}})
    assert user.status == 200, body
    return dict(body)


# -- /keys/device_signing/upload -----------------------------------------------------------------
def test_first_upload_needs_no_user_interactive_auth(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    body = user.post(DEVICE_SIGNING, CrossSigningKeys(user.user_id).upload_body())
    assert (user.status, body) == (200, {})


def test_uploading_the_same_keys_again_needs_no_user_interactive_auth(
        any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = upload_cross_signing(user)
    body = user.post(DEVICE_SIGNING, keys.upload_body())
    assert (user.status, body) == (200, {})


def test_replacing_keys_asks_for_the_password(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    upload_cross_signing(user)
    body = user.post(DEVICE_SIGNING, CrossSigningKeys(user.user_id).upload_body())
    assert user.status == 401, body
    assert {"stages": ["m.login.password"]} in body["flows"]
    assert "session" in body


def test_replacing_keys_with_the_password_goes_ahead(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    upload_cross_signing(user)
    new = CrossSigningKeys(user.user_id)
    session = user.post(DEVICE_SIGNING, new.upload_body())["session"]
    body = user.post(DEVICE_SIGNING, new.upload_body(auth=password_auth(user, session)))
    assert (user.status, body) == (200, {})
    assert query(user, user.user_id)["master_keys"][user.user_id] == new.master_key


def test_replacing_keys_with_a_wrong_password_is_refused(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    old = upload_cross_signing(user)
    new = CrossSigningKeys(user.user_id)
    session = user.post(DEVICE_SIGNING, new.upload_body())["session"]
    auth = {**password_auth(user, session), "password": "wrong"}
    body = user.post(DEVICE_SIGNING, new.upload_body(auth=auth))
    assert (user.status, body["errcode"]) == (401, "M_FORBIDDEN")
    assert query(user, user.user_id)["master_keys"][user.user_id] == old.master_key


def test_adding_a_self_signing_key_later_needs_user_interactive_auth(
        any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    user.post(DEVICE_SIGNING, {"master_key": keys.master_key})
    assert user.status == 200
    body = user.post(DEVICE_SIGNING, {"self_signing_key": keys.self_signing_key})
    assert user.status == 401, body


def test_self_signing_key_not_signed_by_the_master_key_is_refused(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    unsigned = keys.public(keys.self_signing, "self_signing")
    body = user.post(DEVICE_SIGNING, {"master_key": keys.master_key,
                                      "self_signing_key": unsigned})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_SIGNATURE")


def test_user_signing_key_signed_by_another_key_is_refused(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    forged = keys.self_signing.sign(keys.public(keys.user_signing, "user_signing"))
    body = user.post(DEVICE_SIGNING, {"master_key": keys.master_key,
                                      "user_signing_key": forged})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_SIGNATURE")


def test_altered_key_no_longer_matches_its_signature(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    altered = keys.self_signing_key
    altered["usage"] = ["self_signing", "user_signing"]
    body = user.post(DEVICE_SIGNING, {"master_key": keys.master_key, "self_signing_key": altered})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_SIGNATURE")


def test_invalid_signature_is_refused_before_asking_for_the_password(
        any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    upload_cross_signing(user)
    new = CrossSigningKeys(user.user_id)
    body = user.post(DEVICE_SIGNING, {"master_key": new.master_key,
                                      "self_signing_key": new.public(new.self_signing,
                                                                     "self_signing")})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_SIGNATURE")


def test_self_signing_key_without_any_master_key_is_missing_param(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    body = user.post(DEVICE_SIGNING,
                     {"self_signing_key": CrossSigningKeys(user.user_id).self_signing_key})
    assert (user.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_key_of_another_user_is_refused(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    body = user.post(DEVICE_SIGNING,
                     {"master_key": CrossSigningKeys("@someone:example.org").master_key})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_key_with_the_wrong_usage_is_refused(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    body = user.post(DEVICE_SIGNING, {"master_key": keys.public(keys.master, "self_signing")})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_key_id_that_is_not_the_public_key_is_refused(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    master = {"user_id": user.user_id, "usage": ["master"],
              "keys": {"ed25519:KEYNAME": keys.master.public}}
    body = user.post(DEVICE_SIGNING, {"master_key": master})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_key_holding_two_keys_is_refused(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    master = keys.master_key
    master["keys"][keys.user_signing.key_id] = keys.user_signing.public
    body = user.post(DEVICE_SIGNING, {"master_key": master})
    assert (user.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_key_that_is_not_an_object_is_bad_json(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    body = user.post(DEVICE_SIGNING, {"master_key": "not a key"})
    assert (user.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_key_named_like_one_of_the_users_devices_is_forbidden(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    login = any_node.client().post(f"{V3}/login", {
        "type": "m.login.password", "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": user.user_id},
        "device_id": keys.master.public})
    assert "access_token" in login, login
    body = user.post(DEVICE_SIGNING, {"master_key": keys.master_key})
    assert (user.status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_upload_needs_an_access_token(any_node: NodeProcess) -> None:
    anonymous = any_node.client()
    body = anonymous.post(DEVICE_SIGNING, CrossSigningKeys("@a:example.org").upload_body())
    assert (anonymous.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


# -- /keys/signatures/upload ---------------------------------------------------------------------
def test_signing_another_users_master_key(any_node: NodeProcess) -> None:
    alice, bob = fresh_user(any_node), fresh_user(any_node)
    alice_keys, bob_keys = upload_cross_signing(alice), upload_cross_signing(bob)
    signed = alice_keys.user_signing.sign(bob_keys.master_key)
    body = alice.post(SIGNATURES, {bob.user_id: {bob_keys.master.public: signed}})
    assert (alice.status, body) == (200, {"failures": {}})
    seen = query(alice, bob.user_id)["master_keys"][bob.user_id]
    assert seen["signatures"][alice.user_id] == signed["signatures"][alice.user_id]


def test_signature_of_another_users_master_key_is_shown_only_to_the_signer(
        any_node: NodeProcess) -> None:
    alice, bob, carol = fresh_user(any_node), fresh_user(any_node), fresh_user(any_node)
    alice_keys, bob_keys = upload_cross_signing(alice), upload_cross_signing(bob)
    signed = alice_keys.user_signing.sign(bob_keys.master_key)
    alice.post(SIGNATURES, {bob.user_id: {bob_keys.master.public: signed}})
    assert alice.status == 200
    for viewer in (bob, carol):
        master = query(viewer, bob.user_id)["master_keys"][bob.user_id]
        assert alice.user_id not in master.get("signatures", {})


def test_signature_by_a_key_other_than_the_user_signing_key_fails(any_node: NodeProcess) -> None:
    alice, bob = fresh_user(any_node), fresh_user(any_node)
    alice_keys, bob_keys = upload_cross_signing(alice), upload_cross_signing(bob)
    forged = sign_json(bob_keys.master_key, alice.user_id,
                       decode_signing_key_base64("ed25519", alice_keys.user_signing.public,
                                                 encode_signing_key_base64(
                                                     alice_keys.self_signing.key)))
    body = alice.post(SIGNATURES, {bob.user_id: {bob_keys.master.public: forged}})
    assert alice.status == 200
    assert body["failures"][bob.user_id][bob_keys.master.public]["errcode"] == \
        "M_INVALID_SIGNATURE"
    master = query(alice, bob.user_id)["master_keys"][bob.user_id]
    assert alice.user_id not in master.get("signatures", {})


def test_signing_an_unknown_master_key_fails_not_found(any_node: NodeProcess) -> None:
    alice, bob = fresh_user(any_node), fresh_user(any_node)
    alice_keys = upload_cross_signing(alice)
    stranger = CrossSigningKeys(bob.user_id)
    signed = alice_keys.user_signing.sign(stranger.master_key)
    body = alice.post(SIGNATURES, {bob.user_id: {stranger.master.public: signed}})
    assert alice.status == 200
    assert body["failures"][bob.user_id][stranger.master.public]["errcode"] == "M_NOT_FOUND"


def test_signed_object_differing_from_the_stored_key_fails(any_node: NodeProcess) -> None:
    alice, bob = fresh_user(any_node), fresh_user(any_node)
    alice_keys, bob_keys = upload_cross_signing(alice), upload_cross_signing(bob)
    altered = bob_keys.master_key
    altered["usage"] = ["master", "extra"]
    body = alice.post(SIGNATURES,
                      {bob.user_id: {bob_keys.master.public: alice_keys.user_signing.sign(altered)}})
    assert alice.status == 200
    assert body["failures"][bob.user_id][bob_keys.master.public]["errcode"] == "M_UNKNOWN"


def test_one_failing_signature_does_not_stop_the_others(any_node: NodeProcess) -> None:
    alice, bob = fresh_user(any_node), fresh_user(any_node)
    alice_keys, bob_keys = upload_cross_signing(alice), upload_cross_signing(bob)
    stranger = CrossSigningKeys("@nobody:example.org")
    body = alice.post(SIGNATURES, {
        bob.user_id: {bob_keys.master.public: alice_keys.user_signing.sign(bob_keys.master_key)},
        stranger.user_id: {stranger.master.public:
                           alice_keys.user_signing.sign(stranger.master_key)}})
    assert alice.status == 200
    assert list(body["failures"]) == [stranger.user_id]
    master = query(alice, bob.user_id)["master_keys"][bob.user_id]
    assert alice.user_id in master["signatures"]


def test_malformed_signatures_of_a_signed_object_fail_as_invalid(any_node: NodeProcess) -> None:
    alice, bob = fresh_user(any_node), fresh_user(any_node)
    upload_cross_signing(alice)
    bob_keys = upload_cross_signing(bob)
    body = alice.post(SIGNATURES, {bob.user_id: {bob_keys.master.public: {
        **bob_keys.master_key, "signatures": ["not", "an", "object"]}}})
    assert alice.status == 200, body
    assert body["failures"][bob.user_id][bob_keys.master.public]["errcode"] == \
        "M_INVALID_SIGNATURE"


def test_signatures_body_of_the_wrong_shape_is_bad_json(any_node: NodeProcess) -> None:
    alice = fresh_user(any_node)
    body = alice.post(SIGNATURES, {alice.user_id: ["not", "an", "object"]})
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_signing_an_own_device_with_the_self_signing_key(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = upload_cross_signing(user)
    device_keys, _ = upload_device_keys(user)
    signed = keys.self_signing.sign(device_keys)
    body = user.post(SIGNATURES, {user.user_id: {user.device_id: signed}})
    assert (user.status, body) == (200, {"failures": {}})
    observer = fresh_user(any_node)
    seen = query(observer, user.user_id)["device_keys"][user.user_id][user.device_id]
    assert seen["signatures"][user.user_id] == signed["signatures"][user.user_id]


def test_signing_an_own_device_without_a_self_signing_key_fails(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = CrossSigningKeys(user.user_id)
    user.post(DEVICE_SIGNING, {"master_key": keys.master_key})
    device_keys, _ = upload_device_keys(user)
    body = user.post(SIGNATURES, {user.user_id: {user.device_id:
                                                 keys.self_signing.sign(device_keys)}})
    assert body["failures"][user.user_id][user.device_id]["errcode"] == "M_INVALID_SIGNATURE"


def test_signing_an_unknown_own_device_fails_not_found(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = upload_cross_signing(user)
    device_keys, _ = device_keys_of(user)
    body = user.post(SIGNATURES, {user.user_id: {user.device_id:
                                                 keys.self_signing.sign(device_keys)}})
    assert body["failures"][user.user_id][user.device_id]["errcode"] == "M_NOT_FOUND"


def test_device_signature_by_the_wrong_key_fails(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = upload_cross_signing(user)
    device_keys, _ = upload_device_keys(user)
    body = user.post(SIGNATURES, {user.user_id: {user.device_id: keys.master.sign(device_keys)}})
    assert body["failures"][user.user_id][user.device_id]["errcode"] == "M_INVALID_SIGNATURE"


def test_signing_the_own_master_key_with_a_device(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = upload_cross_signing(user)
    _, device = upload_device_keys(user)
    signed = device.sign(keys.master_key)
    body = user.post(SIGNATURES, {user.user_id: {keys.master.public: signed}})
    assert (user.status, body) == (200, {"failures": {}})
    observer = fresh_user(any_node)
    master = query(observer, user.user_id)["master_keys"][user.user_id]
    assert master["signatures"][user.user_id][device.key_id] == \
        signed["signatures"][user.user_id][device.key_id]


def test_master_key_signature_by_an_unknown_device_fails(any_node: NodeProcess) -> None:
    user = fresh_user(any_node)
    keys = upload_cross_signing(user)
    signed = Ed25519(user.user_id, "NOSUCHDEVICE").sign(keys.master_key)
    body = user.post(SIGNATURES, {user.user_id: {keys.master.public: signed}})
    assert body["failures"][user.user_id][keys.master.public]["errcode"] == \
        "M_INVALID_SIGNATURE"


# -- /keys/query ---------------------------------------------------------------------------------
def test_query_shows_master_and_self_signing_keys_to_others(any_node: NodeProcess) -> None:
    alice, bob = fresh_user(any_node), fresh_user(any_node)
    keys = upload_cross_signing(alice)
    body = query(bob, alice.user_id)
    assert body["master_keys"][alice.user_id] == keys.master_key
    assert body["self_signing_keys"][alice.user_id] == keys.self_signing_key
    assert alice.user_id not in body.get("user_signing_keys", {})


def test_query_shows_the_user_signing_key_to_its_owner(any_node: NodeProcess) -> None:
    alice = fresh_user(any_node)
    keys = upload_cross_signing(alice)
    body = query(alice, alice.user_id)
    assert body["user_signing_keys"][alice.user_id] == keys.user_signing_key
