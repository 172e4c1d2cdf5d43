"""Server name parsing, .well-known parsing and the server discovery plan."""

from __future__ import annotations

import pytest

from protocol.discovery import (
    NOT_FETCHED,
    Candidate,
    DiscoveryIncomplete,
    NeedSrv,
    NeedWellKnown,
    Resolved,
    SrvRecord,
    is_ip_literal,
    next_discovery_step,
    parse_server_name,
    parse_well_known,
    resolution_plan,
    srv_query_names,
)


# Server names ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("matrix.org", ("matrix.org", None)),
        ("matrix.org:8888", ("matrix.org", 8888)),
        ("1.2.3.4", ("1.2.3.4", None)),
        ("1.2.3.4:1234", ("1.2.3.4", 1234)),
        ("[1234:5678::abcd]", ("1234:5678::abcd", None)),
        ("[1234:5678::abcd]:5678", ("1234:5678::abcd", 5678)),
        ("[::ffff:1.2.3.4]", ("::ffff:1.2.3.4", None)),
        ("localhost", ("localhost", None)),
        ("a-b.example", ("a-b.example", None)),
        ("EXAMPLE.org", ("EXAMPLE.org", None)),
    ],
)
def test_valid_server_names_parse(name: str, expected: tuple[str, int | None]) -> None:
    assert parse_server_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "matrix.org:",
        "matrix.org:port",
        "matrix.org:123456",
        "matrix.org:0",
        "matrix.org:65536",
        "under_score.org",
        "sp ace.org",
        "1234:5678::abcd",
        "[1234:5678::abcd",
        "[1234:5678::abcd]x",
        "[not:an:ip:addr:ess:at:all:zz]",
        "[fe80::1%eth0]",
        "1.2.3.999",
        "a" * 256,
        "user@host",
    ],
)
def test_invalid_server_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        parse_server_name(name)


def test_ip_literal_detection() -> None:
    assert is_ip_literal("1.2.3.4") and is_ip_literal("::1")
    assert not is_ip_literal("example.org")


# .well-known -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"m.server": "delegated.example:443"}', "delegated.example:443"),
        ('{"m.server": "delegated.example"}', "delegated.example"),
        ({"m.server": "[::1]:8448", "extra": 1}, "[::1]:8448"),
        (b"not json", None),
        (b"\xff\xfe", None),
        (b"[]", None),
        ({}, None),
        ({"m.server": 42}, None),
        ({"m.server": "https://delegated.example"}, None),
        ({"m.server": ""}, None),
    ],
)
def test_well_known_parsing(body: object, expected: str | None) -> None:
    assert parse_well_known(body) == expected


# Plans, one per spec step ------------------------------------------------------------------
def test_step1_ipv4_literal_uses_default_port_and_the_ip_as_tls_name() -> None:
    assert resolution_plan("1.2.3.4", NOT_FETCHED, None) == [
        Candidate("1.2.3.4", 8448, "1.2.3.4", "1.2.3.4")
    ]


def test_step1_ipv6_literal_with_port_keeps_brackets_in_host_header() -> None:
    assert resolution_plan("[::1]:9000", NOT_FETCHED, None) == [
        Candidate("::1", 9000, "::1", "[::1]:9000")
    ]


def test_step2_explicit_port_needs_no_lookups() -> None:
    assert resolution_plan("example.org:8449", NOT_FETCHED, None) == [
        Candidate("example.org", 8449, "example.org", "example.org:8449")
    ]


def test_step3_starts_with_the_well_known_lookup() -> None:
    assert next_discovery_step("example.org") == NeedWellKnown("example.org")


def test_step3_1_delegation_to_an_ip_literal() -> None:
    assert resolution_plan("example.org", "[2001:db8::1]", None) == [
        Candidate("2001:db8::1", 8448, "2001:db8::1", "[2001:db8::1]")
    ]
    assert resolution_plan("example.org", "10.0.0.1:443", None) == [
        Candidate("10.0.0.1", 443, "10.0.0.1", "10.0.0.1:443")
    ]


def test_step3_2_delegation_with_port() -> None:
    assert resolution_plan("example.org", "matrix.example.net:443", None) == [
        Candidate("matrix.example.net", 443, "matrix.example.net", "matrix.example.net:443")
    ]


def test_step3_3_delegation_without_port_uses_matrix_fed_srv() -> None:
    assert next_discovery_step("example.org", "m.example.net", {}) == NeedSrv(
        "_matrix-fed._tcp.m.example.net"
    )
    srv = {"_matrix-fed._tcp.m.example.net": [SrvRecord("fed.example.net.", 8000)]}
    assert resolution_plan("example.org", "m.example.net", srv) == [
        Candidate("fed.example.net", 8000, "m.example.net", "m.example.net")
    ]


def test_step3_4_delegation_falls_back_to_legacy_srv() -> None:
    srv: dict[str, list[SrvRecord]] = {"_matrix-fed._tcp.m.example.net": []}
    assert next_discovery_step("example.org", "m.example.net", srv) == NeedSrv(
        "_matrix._tcp.m.example.net"
    )
    srv["_matrix._tcp.m.example.net"] = [SrvRecord("old.example.net", 8001)]
    assert resolution_plan("example.org", "m.example.net", srv) == [
        Candidate("old.example.net", 8001, "m.example.net", "m.example.net")
    ]


def test_step3_5_delegation_without_srv_uses_default_port() -> None:
    srv: dict[str, list[SrvRecord]] = {
        "_matrix-fed._tcp.m.example.net": [],
        "_matrix._tcp.m.example.net": [],
    }
    assert resolution_plan("example.org", "m.example.net", srv) == [
        Candidate("m.example.net", 8448, "m.example.net", "m.example.net")
    ]


def test_step4_no_well_known_uses_matrix_fed_srv_with_original_tls_name() -> None:
    assert next_discovery_step("example.org", None) == NeedSrv("_matrix-fed._tcp.example.org")
    srv = {
        "_matrix-fed._tcp.example.org": [
            SrvRecord("b.example.org", 8449, priority=10, weight=5),
            SrvRecord("a.example.org", 8448, priority=0, weight=1),
            SrvRecord("c.example.org", 8450, priority=10, weight=50),
        ]
    }
    assert resolution_plan("example.org", None, srv) == [
        Candidate("a.example.org", 8448, "example.org", "example.org"),
        Candidate("c.example.org", 8450, "example.org", "example.org"),
        Candidate("b.example.org", 8449, "example.org", "example.org"),
    ]


def test_step4_matrix_fed_srv_wins_over_legacy_srv() -> None:
    srv = {
        "_matrix-fed._tcp.example.org": [SrvRecord("new.example.org", 1)],
        "_matrix._tcp.example.org": [SrvRecord("old.example.org", 2)],
    }
    assert [c.host for c in resolution_plan("example.org", None, srv)] == ["new.example.org"]


def test_step5_legacy_srv_when_no_matrix_fed_record() -> None:
    srv = {
        "_matrix-fed._tcp.example.org": [],
        "_matrix._tcp.example.org": [SrvRecord("old.example.org", 8447)],
    }
    assert resolution_plan("example.org", None, srv) == [
        Candidate("old.example.org", 8447, "example.org", "example.org")
    ]


def test_step6_default_port_8448_when_nothing_else() -> None:
    srv: dict[str, list[SrvRecord]] = dict.fromkeys(srv_query_names("example.org"), [])
    assert resolution_plan("example.org", None, srv) == [
        Candidate("example.org", 8448, "example.org", "example.org")
    ]


def test_srv_target_dot_means_service_unavailable() -> None:
    srv = {"_matrix-fed._tcp.example.org": [SrvRecord(".", 0)]}
    assert next_discovery_step("example.org", None, srv) == Resolved(())


def test_plan_without_a_needed_answer_names_it() -> None:
    with pytest.raises(DiscoveryIncomplete, match="_matrix-fed._tcp.example.org"):
        resolution_plan("example.org", None, {})
    with pytest.raises(DiscoveryIncomplete, match=".well-known result for example.org"):
        resolution_plan("example.org", NOT_FETCHED, None)


def test_invalid_server_name_has_no_plan() -> None:
    with pytest.raises(ValueError):
        resolution_plan("bad_name", NOT_FETCHED, None)
