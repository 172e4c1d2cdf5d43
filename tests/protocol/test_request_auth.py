"""X-Matrix request signing, header parsing and request verification."""

from __future__ import annotations

import pytest

from protocol.errors import MalformedAuthorization, SignatureVerifyError
from protocol.request_auth import (
    XMatrixAuth,
    parse_authorization_header,
    request_json,
    sign_request,
    verify_request,
)
from protocol.signing import generate_signing_key, get_verify_key, sign_json

KEY = generate_signing_key("key1")
VERIFY = get_verify_key(KEY)
URI = "/_matrix/federation/v1/send/txn1?x=%2F"
BODY = {"pdus": [], "edus": [{"edu_type": "m.typing", "content": {}}]}
# A real 64-byte ed25519 signature, unpadded base64 (86 chars), for parsing tests.
SIG = sign_request("a.test", "b.test", "GET", "/x", None, KEY).rsplit('sig="', 1)[1][:-1]


def _header(**over: str) -> str:
    return sign_request(
        over.get("origin", "a.test"),
        over.get("destination", "b.test"),
        over.get("method", "PUT"),
        over.get("uri", URI),
        BODY,
        KEY,
    )


def test_header_round_trip_verifies() -> None:
    auth = parse_authorization_header(_header())
    assert auth == XMatrixAuth("a.test", "b.test", "ed25519:key1", auth.signature)
    verify_request(auth, "PUT", URI, BODY, "b.test", VERIFY)


def test_sent_header_uses_the_spec_layout() -> None:
    header = _header()
    assert header.startswith(
        'X-Matrix origin="a.test",destination="b.test",key="ed25519:key1",sig="'
    )
    assert header.endswith('"') and "  " not in header


def test_request_without_body_round_trip() -> None:
    header = sign_request("a.test", "b.test", "GET", "/_matrix/federation/v1/version", None, KEY)
    auth = parse_authorization_header(header)
    verify_request(auth, "GET", "/_matrix/federation/v1/version", None, "b.test", VERIFY)


def test_empty_object_body_is_not_the_same_as_no_body() -> None:
    auth = parse_authorization_header(sign_request("a.test", "b.test", "POST", "/p", {}, KEY))
    verify_request(auth, "POST", "/p", {}, "b.test", VERIFY)
    with pytest.raises(SignatureVerifyError):
        verify_request(auth, "POST", "/p", None, "b.test", VERIFY)


def test_signed_object_matches_the_spec_step_one() -> None:
    assert request_json("GET", "/target", "o.example", "d.example", None) == {
        "method": "GET",
        "uri": "/target",
        "origin": "o.example",
        "destination": "d.example",
    }


def test_spec_example_header_parses() -> None:
    # The spec's example with its "ABCDEF..." placeholder replaced by a real signature.
    header = (
        'X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",'
        f'key="ed25519:key1",sig="{SIG}"'
    )
    auth = parse_authorization_header(header)
    assert auth.origin == "origin.hs.example.com"
    assert auth.destination == "destination.hs.example.com"
    assert auth.key_id == "ed25519:key1"
    assert auth.signature == SIG


def test_spec_example_signature_verifies_against_its_signed_json() -> None:
    signed = sign_json(
        {
            "method": "GET",
            "uri": "/target",
            "origin": "origin.hs.example.com",
            "destination": "destination.hs.example.com",
        },
        "origin.hs.example.com",
        KEY,
    )
    sig = signed["signatures"]["origin.hs.example.com"]["ed25519:key1"]
    auth = parse_authorization_header(
        f'X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",'
        f'key="ed25519:key1",sig="{sig}"'
    )
    verify_request(auth, "GET", "/target", None, "destination.hs.example.com", VERIFY)


@pytest.mark.parametrize(
    "header",
    [
        # Unquoted tokens, and colons in unquoted values (older senders).
        f"X-Matrix origin=a.test:8448,destination=b.test,key=ed25519:key1,sig={SIG}",
        # Scheme and parameter names are case-insensitive; order does not matter.
        f'x-matrix SIG="{SIG}",Key="ed25519:key1",DESTINATION="b.test",Origin="a.test:8448"',
        # Several spaces after the scheme, whitespace around '=' and ','.
        f'X-Matrix   origin = "a.test:8448" ,  destination="b.test",key="ed25519:key1", sig="{SIG}"',
        # Backslash escapes inside quoted values are unescaped.
        f'X-Matrix origin="a\\.test:8448",destination="b.test",key="ed25519:\\key1",sig="{SIG}"',
        # Unknown parameters are ignored, even with commas inside their quotes.
        f'X-Matrix extra="x, y=\\"z\\"",origin="a.test:8448",destination="b.test",'
        f'key="ed25519:key1",sig="{SIG}"',
        # Empty list elements are tolerated (RFC 7230 #rule).
        f'X-Matrix ,origin="a.test:8448",,destination="b.test",key="ed25519:key1",sig="{SIG}",',
    ],
)
def test_quoting_edge_cases_parse_to_the_same_values(header: str) -> None:
    auth = parse_authorization_header(header)
    assert auth == XMatrixAuth("a.test:8448", "b.test", "ed25519:key1", SIG)


def test_ipv6_origin_parses_quoted_and_unquoted() -> None:
    for origin in ('"[::1]:8448"', "[::1]:8448"):
        header = f'X-Matrix origin={origin},key="ed25519:key1",sig="{SIG}"'
        assert parse_authorization_header(header).origin == "[::1]:8448"


def test_header_as_bytes_is_accepted() -> None:
    assert parse_authorization_header(_header().encode()).origin == "a.test"


def test_missing_destination_is_accepted_and_verified_against_our_name() -> None:
    header = _header()
    legacy = header.replace('destination="b.test",', "")
    auth = parse_authorization_header(legacy)
    assert auth.destination is None
    verify_request(auth, "PUT", URI, BODY, "b.test", VERIFY)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ('X-Matrix origin="a.test",key="ed25519:key1"', "missing 'sig'"),
        (f'X-Matrix key="ed25519:key1",sig="{SIG}"', "missing 'origin'"),
        (f'X-Matrix origin="a.test",sig="{SIG}"', "missing 'key'"),
        (f'X-Matrix origin="a.test",key="ed25519",sig="{SIG}"', "key must be"),
        (f'X-Matrix origin="a.test",key="rsa:key1",sig="{SIG}"', "key must be"),
        (f'X-Matrix origin="a.test",key="ed25519:k-1",sig="{SIG}"', "key must be"),
        ('X-Matrix origin="a.test",key="ed25519:key1",sig="!!!"', "sig is not base64"),
        ('X-Matrix origin="a.test",key="ed25519:key1",sig="AAAA"', "not an ed25519 signature"),
        (
            f'X-Matrix origin="a.test",origin="b.test",key="ed25519:key1",sig="{SIG}"',
            "duplicate parameter 'origin'",
        ),
        (
            f'X-Matrix origin="a.test",ORIGIN="a.test",key="ed25519:key1",sig="{SIG}"',
            "duplicate parameter 'origin'",
        ),
        (f'Bearer origin="a.test",key="ed25519:key1",sig="{SIG}"', "X-Matrix scheme"),
        ("X-Matrix", "no parameters"),
        ("X-Matrix    ", "no parameters"),
        ("", "X-Matrix scheme"),
        (f'X-Matrix key="ed25519:key1",sig="{SIG}",origin="a.test', "unterminated"),
        ('X-Matrix origin="a.test\\', "unterminated"),
        (f'X-Matrix origin="a.test" key="ed25519:key1",sig="{SIG}"', "expected ','"),
        (f'X-Matrix origin,key="ed25519:key1",sig="{SIG}"', "'origin' has no value"),
        (f'X-Matrix origin=,key="ed25519:key1",sig="{SIG}"', "'origin' has no value"),
        (f'X-Matrix origin="",key="ed25519:key1",sig="{SIG}"', "missing 'origin'"),
        (f'X-Matrix origin="bad host!",key="ed25519:key1",sig="{SIG}"', "invalid origin"),
        (
            f'X-Matrix origin="a.test",destination="b:99999",key="ed25519:key1",sig="{SIG}"',
            "invalid destination",
        ),
        (f'X-Matrix =x,origin="a.test",key="ed25519:key1",sig="{SIG}"', "parameter name"),
        (f'X-Matrix origin="a\x01",key="ed25519:key1",sig="{SIG}"', "control character"),
        ("X-Matrix \x00\xff garbage", "parameter name"),
    ],
)
def test_malformed_headers_are_refused_with_a_clear_message(header: str, message: str) -> None:
    with pytest.raises(MalformedAuthorization, match=message):
        parse_authorization_header(header)


def test_non_utf8_header_bytes_are_refused() -> None:
    with pytest.raises(MalformedAuthorization, match="UTF-8"):
        parse_authorization_header(b"X-Matrix origin=\xff")


def test_wrong_destination_is_refused() -> None:
    auth = parse_authorization_header(_header(destination="c.test"))
    with pytest.raises(SignatureVerifyError, match="c.test"):
        verify_request(auth, "PUT", URI, BODY, "b.test", VERIFY)


def test_request_for_another_server_without_destination_param_fails_signature() -> None:
    legacy = _header(destination="c.test").replace('destination="c.test",', "")
    with pytest.raises(SignatureVerifyError):
        verify_request(parse_authorization_header(legacy), "PUT", URI, BODY, "b.test", VERIFY)


@pytest.mark.parametrize(
    ("method", "uri", "body"),
    [
        ("POST", URI, BODY),
        ("PUT", "/_matrix/federation/v1/send/txn2", BODY),
        ("PUT", "/_matrix/federation/v1/send/txn1?x=/", BODY),
        ("PUT", URI, {"pdus": [], "edus": []}),
        ("PUT", URI, None),
    ],
)
def test_tampered_request_is_refused(method: str, uri: str, body: dict | None) -> None:
    auth = parse_authorization_header(_header())
    with pytest.raises(SignatureVerifyError):
        verify_request(auth, method, uri, body, "b.test", VERIFY)


def test_spoofed_origin_is_refused() -> None:
    auth = parse_authorization_header(_header())
    spoofed = XMatrixAuth("evil.test", auth.destination, auth.key_id, auth.signature)
    with pytest.raises(SignatureVerifyError):
        verify_request(spoofed, "PUT", URI, BODY, "b.test", VERIFY)


def test_verify_key_must_match_the_header_key_id() -> None:
    auth = parse_authorization_header(_header())
    other = get_verify_key(generate_signing_key("key2"))
    with pytest.raises(SignatureVerifyError, match="does not match"):
        verify_request(auth, "PUT", URI, BODY, "b.test", other)


def test_signature_by_another_key_with_the_same_id_is_refused() -> None:
    auth = parse_authorization_header(_header())
    impostor = get_verify_key(generate_signing_key("key1"))
    with pytest.raises(SignatureVerifyError):
        verify_request(auth, "PUT", URI, BODY, "b.test", impostor)
