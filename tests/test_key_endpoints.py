"""Key endpoints, X-Matrix authentication and key rotation, called with fake requests.

The endpoints run against a stub node (server name, signing key, clock, config path, keyring,
federation policy); the keyring is real, over a synchronous SQLite database and a fake client.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import defer
from twisted.web.http_headers import Headers

from broker.federation_api import authentication, keys
from broker.federation_api.keys import KeyQuery
from broker.http.bodies import read_body
from broker.http.endpoint import Call
from broker.http.errors import MatrixError
from broker.key_admin import old_keys_path, published_old_keys, read_old_keys, rotate_signing_key
from broker.services.federation_queries import KEY_VALIDITY_MS, ServerKeys
from federation.keyring import SERVER_KEYS_PATH, Keyring
from protocol.request_auth import sign_request
from protocol.server_keys import build_server_keys_response, parse_server_keys_response
from protocol.signing import (
    encode_signing_key_seed,
    encode_verify_key,
    generate_signing_key,
    get_verify_key,
    read_signing_keys_file,
    verify_json_signature,
    verify_key_id,
    write_signing_key_file,
)
from storage.server_keys import ServerKeyStore
from tests.storage_helpers import make_database, result_of
from tests.test_keyring import FakeClient

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_700_000_000_000
ME = "me.example"
REMOTE = "remote.example"
REMOTE_KEY = generate_signing_key("r1")


class FakeRequest:
    def __init__(self, method: str = "GET", uri: str = "/", body: bytes = b"",
                 headers: dict[bytes, list[bytes]] | None = None,
                 args: dict[bytes, list[bytes]] | None = None) -> None:
        self.method = method.encode("ascii")
        self.uri = uri.encode("ascii")
        self.path = self.uri.split(b"?", 1)[0]
        self.content = io.BytesIO(body)
        self.requestHeaders = Headers(headers or {})
        self.args = args or {}


@pytest.fixture
def node(tmp_path: Path) -> Any:
    db, cleanup = make_database("sqlite", tmp_path)
    key_path = tmp_path / "signing.key"
    signing_key = generate_signing_key("me1")
    write_signing_key_file(key_path, signing_key)
    client = FakeClient()
    client.answers[("GET", REMOTE, SERVER_KEYS_PATH)] = build_server_keys_response(
        REMOTE, [REMOTE_KEY], [], NOW + 3600_000)
    clock = SimpleNamespace(time_ms=lambda: NOW)
    allowed = {REMOTE}
    stub = SimpleNamespace(
        server_name=ME, signing_key=signing_key, clock=clock,
        config=SimpleNamespace(signing_key_path=key_path),
        federation_policy=SimpleNamespace(is_allowed=lambda origin: origin in allowed),
        keyring=Keyring(ServerKeyStore(db), client, ME,
                        {verify_key_id(signing_key): get_verify_key(signing_key)}, clock),
        fake_client=client,
    )
    stub.authentication = authentication.ServerAuthentication(stub.federation_policy,
                                                              stub.keyring)
    yield stub
    cleanup()


def run(coro: Any) -> Any:
    return result_of(defer.ensureDeferred(coro))


def key_endpoints(node: Any) -> keys.KeyEndpoints:
    old_keys = [(k.key, k.key_id, k.expired_ts)
                for k in published_old_keys(node.config.signing_key_path, [node.signing_key])]
    return keys.KeyEndpoints(ServerKeys(node.server_name, node.signing_key, old_keys,
                                        node.clock, node.keyring))


# GET /_matrix/key/v2/server ------------------------------------------------------------------
def test_own_keys_are_signed_and_valid_for_a_day(node: Any) -> None:
    status, body = run(key_endpoints(node).get_server(Call(FakeRequest())))
    parsed = parse_server_keys_response(body, ME, NOW)
    assert status == 200 and list(parsed.verify_keys) == ["ed25519:me1"]
    assert body["valid_until_ts"] == NOW + KEY_VALIDITY_MS


def test_rotated_key_is_listed_under_old_verify_keys(node: Any) -> None:
    result = rotate_signing_key(node.config.signing_key_path, now_ms=NOW - 5)
    node.signing_key = read_signing_keys_file(node.config.signing_key_path)[0]
    status, body = run(key_endpoints(node).get_server(Call(FakeRequest())))
    assert list(body["verify_keys"]) == [result.new_key_id]
    assert body["old_verify_keys"]["ed25519:me1"]["expired_ts"] == NOW - 5


# Notary --------------------------------------------------------------------------------------
def test_notary_get_query_answers_remote_keys_counter_signed(node: Any) -> None:
    request = FakeRequest(args={b"minimum_valid_until_ts": [str(NOW).encode()]})
    status, body = run(key_endpoints(node).get_query(Call(request), REMOTE))
    [entry] = body["server_keys"]
    verify_json_signature(entry, REMOTE, get_verify_key(REMOTE_KEY))
    verify_json_signature(entry, ME, get_verify_key(node.signing_key))


def test_notary_post_query_answers_each_requested_server(node: Any) -> None:
    query = {"server_keys": {REMOTE: {"ed25519:r1": {"minimum_valid_until_ts": NOW}}, ME: {}}}
    request = FakeRequest("POST", body=json.dumps(query).encode())
    status, body = run(key_endpoints(node).post_query(Call(request),
                                                      read_body(request, KeyQuery)))
    assert sorted(entry["server_name"] for entry in body["server_keys"]) == [ME, REMOTE]


def test_notary_answers_nothing_for_a_server_it_cannot_reach(node: Any) -> None:
    status, body = run(key_endpoints(node).get_query(Call(FakeRequest()), "down.example"))
    assert body == {"server_keys": []}


def test_notary_post_query_with_bad_criteria_is_refused(node: Any) -> None:
    request = FakeRequest("POST", body=b'{"server_keys": {"remote.example": []}}')
    with pytest.raises(MatrixError) as info:
        read_body(request, KeyQuery)
    assert info.value.errcode == "M_BAD_JSON"


@pytest.mark.parametrize("minimum", ["soon", "\u00b3"])  # a superscript is a digit, no number
def test_notary_get_query_with_bad_minimum_is_refused(node: Any, minimum: str) -> None:
    request = FakeRequest(args={b"minimum_valid_until_ts": [minimum.encode()]})
    with pytest.raises(MatrixError) as info:
        run(key_endpoints(node).get_query(Call(request), REMOTE))
    assert info.value.errcode == "M_INVALID_PARAM"


# Authentication ------------------------------------------------------------------------------
def signed_request(method: str = "PUT", uri: str = "/_matrix/federation/v1/send/t1",
                   content: Any = None, origin: str = REMOTE, key: Any = REMOTE_KEY,
                   body: bytes | None = None) -> FakeRequest:
    content = {"pdus": []} if content is None and method != "GET" else content
    header = sign_request(origin, ME, method, uri, content, key)
    raw = body if body is not None else (b"" if content is None else
                                         json.dumps(content).encode())
    return FakeRequest(method, uri, raw, {b"Authorization": [header.encode()]})


def auth_error(node: Any, request: FakeRequest) -> MatrixError:
    with pytest.raises(MatrixError) as info:
        run(node.authentication(request))
    return info.value


def test_correctly_signed_request_authenticates_its_origin(node: Any) -> None:
    assert run(node.authentication(signed_request())) == REMOTE


def test_signed_get_with_query_authenticates(node: Any) -> None:
    request = signed_request("GET", "/_matrix/federation/v1/state/%21r%3Ax?event_id=%24e")
    assert run(node.authentication(request)) == REMOTE


def test_body_stays_readable_after_authentication(node: Any) -> None:
    request = signed_request()
    run(node.authentication(request))
    assert request.content.read() == b'{"pdus": []}'


def test_missing_authorization_is_unauthorized(node: Any) -> None:
    error = auth_error(node, FakeRequest("GET", "/_matrix/federation/v1/version"))
    assert (error.status, error.errcode) == (401, "M_UNAUTHORIZED")


def test_malformed_authorization_is_unauthorized(node: Any) -> None:
    request = FakeRequest("GET", "/x", headers={b"Authorization": [b"X-Matrix origin=,key"]})
    assert auth_error(node, request).status == 401


def test_tampered_body_is_unauthorized(node: Any) -> None:
    request = signed_request(body=b'{"pdus": [{}]}')
    assert auth_error(node, request).errcode == "M_UNAUTHORIZED"


def test_signature_by_another_key_is_unauthorized(node: Any) -> None:
    request = signed_request(key=generate_signing_key("r1"))
    assert auth_error(node, request).status == 401


def test_origin_not_allowed_is_forbidden_before_fetching_keys(node: Any) -> None:
    request = signed_request(origin="stranger.example")
    error = auth_error(node, request)
    assert (error.status, error.errcode, error.message) == (
        403, "M_FORBIDDEN", "Federation with this server is not allowed")
    assert node.fake_client.calls == []


def test_refused_origins_are_counted(node: Any) -> None:
    auth_error(node, signed_request(origin="counted.example"))
    auth_error(node, signed_request(origin="counted.example"))
    assert node.authentication.refused == {"counted.example": 2}


def test_headers_naming_different_origins_are_unauthorized(node: Any) -> None:
    first = sign_request(REMOTE, ME, "GET", "/x", None, REMOTE_KEY)
    second = sign_request("other.example", ME, "GET", "/x", None, REMOTE_KEY)
    request = FakeRequest("GET", "/x", headers={b"Authorization": [first.encode(),
                                                                     second.encode()]})
    assert auth_error(node, request).status == 401


def test_body_that_is_not_json_is_refused(node: Any) -> None:
    assert auth_error(node, signed_request(body=b"{nope")).errcode == "M_NOT_JSON"


# Rotation ------------------------------------------------------------------------------------
def test_rotation_moves_the_previous_public_key_to_the_old_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    previous = generate_signing_key("p1")
    write_signing_key_file(path, previous)
    result = rotate_signing_key(path, now_ms=1234)
    [old] = read_old_keys(old_keys_path(path))
    assert (old.key_id, encode_verify_key(old.key), old.expired_ts) == (
        "ed25519:p1", encode_verify_key(previous), 1234)
    assert result.retired_key_ids == ("ed25519:p1",)


def test_rotation_writes_a_new_key_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    write_signing_key_file(path, generate_signing_key("p1"))
    result = rotate_signing_key(path, now_ms=1)
    [new] = read_signing_keys_file(path)
    assert verify_key_id(new) == result.new_key_id != "ed25519:p1"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_old_keys_file_keeps_no_private_key(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    previous = generate_signing_key("p1")
    write_signing_key_file(path, previous)
    rotate_signing_key(path, now_ms=1)
    assert encode_signing_key_seed(previous) not in old_keys_path(path).read_text()


def test_second_rotation_keeps_both_old_keys(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    write_signing_key_file(path, generate_signing_key("p1"))
    first = rotate_signing_key(path, now_ms=1)
    rotate_signing_key(path, now_ms=2)
    assert [(k.key_id, k.expired_ts) for k in read_old_keys(old_keys_path(path))] == [
        ("ed25519:p1", 1), (first.new_key_id, 2)]


def test_malformed_old_keys_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "signing.key.old"
    path.write_text("ed25519 p1 notbase64!! 12\n")
    with pytest.raises(ValueError):
        read_old_keys(path)


def test_rotate_script_rotates_the_configured_key(tmp_path: Path) -> None:
    config = tmp_path / "homeserver.yaml"
    subprocess.run([sys.executable, "-m", "broker", "init", "--server-name", "rot.example",
                    "--config", str(config)], cwd=ROOT, check=True, capture_output=True)
    env = dict(os.environ, BROKER_PYTHON=sys.executable)
    result = subprocess.run([str(ROOT / "scripts" / "rotate-signing-key"), "--config",
                             str(config)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "new signing key ed25519:" in result.stdout and "retired ed25519:" in result.stdout
