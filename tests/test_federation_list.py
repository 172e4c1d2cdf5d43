"""The signed federation list format (federation/federation_list.py) and the authority's CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from federation.federation_list import (
    authority_key_id,
    create_list,
    generate_authority_key,
    verify_list,
)
from protocol.errors import FederationListError
from protocol.signing import encode_verify_key, generate_signing_key, sign_json
from tests.node_harness import REPO

NOW = 1_800_000_000_000
KEY = generate_authority_key()
PUB = encode_verify_key(KEY)


def signed(servers: tuple[str, ...] = ("a.gov", "b.gov"), version: int = 3,
           expires_ts: int | None = None) -> dict[str, Any]:
    return create_list(servers, version, "fed.gov", KEY, expires_ts, issued_ts=NOW - 1000)


def refusal(doc: Any, pub: str = PUB, now: int | None = NOW) -> FederationListError:
    with pytest.raises(FederationListError) as info:
        verify_list(doc, pub, now)
    return info.value


# --- format -----------------------------------------------------------------------------------
def test_round_trip_returns_the_servers_version_and_authority() -> None:
    flist = verify_list(signed(expires_ts=NOW + 5000), PUB, NOW)
    assert flist.servers == frozenset({"a.gov", "b.gov"})
    assert (flist.version, flist.authority, flist.issued_ts, flist.expires_ts) == (
        3, "fed.gov", NOW - 1000, NOW + 5000)
    assert flist.key_id == authority_key_id(PUB)


def test_round_trip_through_json_bytes() -> None:
    data = json.dumps(signed(), indent=2).encode()
    assert verify_list(data, PUB, NOW).servers == frozenset({"a.gov", "b.gov"})


def test_create_list_sorts_and_deduplicates_servers() -> None:
    assert signed(("c.gov", "a.gov", "c.gov"))["servers"] == ["a.gov", "c.gov"]


def test_create_list_refuses_an_invalid_server_name() -> None:
    with pytest.raises(FederationListError) as info:
        signed(("a.gov", "not a server"))
    assert info.value.reason == "invalid_server_name"


def test_create_list_refuses_a_non_positive_version() -> None:
    with pytest.raises(FederationListError) as info:
        signed(version=0)
    assert info.value.reason == "malformed"


def test_generated_authority_key_id_is_derived_from_its_public_key() -> None:
    assert f"ed25519:{KEY.version}" == authority_key_id(PUB)


# --- refusals ---------------------------------------------------------------------------------
def test_unsigned_list_is_refused() -> None:
    doc = signed()
    del doc["signatures"]
    error = refusal(doc)
    assert error.reason == "unsigned"
    assert "unsigned" in str(error)


def test_list_signed_only_by_another_name_is_refused_as_unsigned() -> None:
    doc = {k: v for k, v in signed().items() if k != "signatures"}
    sign_json(doc, "someone.else", KEY)
    error = refusal(doc)
    assert error.reason == "unsigned"
    assert "someone.else" in str(error)


def test_altered_list_is_refused_as_a_bad_signature() -> None:
    doc = signed()
    doc["servers"].append("intruder.example")
    error = refusal(doc)
    assert error.reason == "bad_signature"
    assert "altered" in str(error)


def test_corrupt_signature_is_refused_as_a_bad_signature() -> None:
    doc = signed()
    doc["signatures"]["fed.gov"][authority_key_id(PUB)] = "AAAA"
    assert refusal(doc).reason == "bad_signature"


def test_list_signed_by_another_authority_key_is_refused_as_wrong_key() -> None:
    other = generate_authority_key()
    doc = create_list(["a.gov"], 1, "fed.gov", other, issued_ts=NOW)
    error = refusal(doc)
    assert error.reason == "wrong_key"
    assert authority_key_id(PUB) in str(error)
    assert authority_key_id(encode_verify_key(other)) in str(error)


def test_list_signed_by_a_key_with_a_free_form_id_verifies() -> None:
    key = generate_signing_key("custom1")
    doc = create_list(["a.gov"], 1, "fed.gov", key, issued_ts=NOW)
    assert verify_list(doc, encode_verify_key(key), NOW).key_id == "ed25519:custom1"


def test_invalid_pinned_authority_key_is_reported() -> None:
    assert refusal(signed(), pub="not base64!").reason == "bad_authority_key"
    assert refusal(signed(), pub="AAAA").reason == "bad_authority_key"


@pytest.mark.parametrize("doc", [
    b"{not json", b"[1, 2]", "null",
], ids=["not-json", "array", "null"])
def test_non_object_list_is_malformed(doc: Any) -> None:
    assert refusal(doc).reason == "malformed"


@pytest.mark.parametrize("field,value", [
    ("version", "3"), ("version", True), ("version", 0), ("issued_ts", -1),
    ("expires_ts", 1.5), ("authority", ""), ("servers", "a.gov"),
])
def test_list_with_a_badly_typed_field_is_malformed(field: str, value: Any) -> None:
    doc = signed()
    doc[field] = value
    assert refusal(doc).reason == "malformed"


def test_list_without_servers_is_malformed() -> None:
    doc = signed()
    del doc["servers"]
    assert refusal(doc).reason == "malformed"


def test_signed_list_with_an_invalid_server_name_is_refused() -> None:
    doc = {"version": 1, "issued_ts": NOW, "authority": "fed.gov",
           "servers": ["a.gov", "bad_name:99999999"]}
    sign_json(doc, "fed.gov", KEY)
    error = refusal(doc)
    assert error.reason == "invalid_server_name"
    assert "bad_name:99999999" in str(error)


def test_expired_list_is_refused() -> None:
    error = refusal(signed(expires_ts=NOW), now=NOW)
    assert error.reason == "expired"
    assert "expired" in str(error)


def test_expiry_is_not_checked_without_a_time() -> None:
    assert verify_list(signed(expires_ts=NOW), PUB, None).expires_ts == NOW


# --- the authority's CLI ----------------------------------------------------------------------
def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "broker.federation_list_cli", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=60,
                          check=False)


def keygen(tmp_path: Path) -> str:
    done = cli("keygen", "--out", "authority.key", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return next(line.split(": ", 1)[1] for line in done.stdout.splitlines()
                if line.startswith("public key: "))


def sign(tmp_path: Path, version: int, *servers: str, extra: tuple[str, ...] = ()
         ) -> subprocess.CompletedProcess[str]:
    return cli("sign", "--key", "authority.key", "--authority", "fed.gov", "--version",
               str(version), "--servers", *servers, "--out", "list.json", *extra, cwd=tmp_path)


def test_cli_keygen_writes_a_0600_key_and_prints_the_public_key(tmp_path: Path) -> None:
    pub = keygen(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "authority.key").st_mode) == 0o600
    done = cli("pubkey", "--key", "authority.key", cwd=tmp_path)
    assert f"public key: {pub}" in done.stdout
    assert f'authority_key: "{pub}"' in done.stdout


def test_cli_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    keygen(tmp_path)
    before = (tmp_path / "authority.key").read_bytes()
    again = cli("keygen", "--out", "authority.key", cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert (tmp_path / "authority.key").read_bytes() == before


def test_cli_keygen_sign_verify_round_trip(tmp_path: Path) -> None:
    pub = keygen(tmp_path)
    (tmp_path / "more.txt").write_text("# ministries\nc.gov\n\nd.gov  # late joiner\n")
    signed_run = sign(tmp_path, 1, "a.gov", "b.gov",
                      extra=("--servers-file", "more.txt", "--expires-days", "30"))
    assert signed_run.returncode == 0, signed_run.stderr
    assert "version 1 of fed.gov" in signed_run.stdout
    assert "4 servers" in signed_run.stdout
    verified = cli("verify", "--authority-key", pub, "list.json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    listed = [line.strip() for line in verified.stdout.splitlines() if line.startswith("  ")]
    assert listed == ["a.gov", "b.gov", "c.gov", "d.gov"]
    stored = verify_list((tmp_path / "list.json").read_bytes(), pub, int(time.time() * 1000))
    assert stored.expires_ts is not None
    assert stored.expires_ts - stored.issued_ts == 30 * 24 * 3600 * 1000


def test_cli_verify_fails_on_a_tampered_list(tmp_path: Path) -> None:
    pub = keygen(tmp_path)
    assert sign(tmp_path, 1, "a.gov").returncode == 0
    doc = json.loads((tmp_path / "list.json").read_text())
    doc["servers"].append("intruder.example")
    (tmp_path / "list.json").write_text(json.dumps(doc))
    done = cli("verify", "--authority-key", pub, "list.json", cwd=tmp_path)
    assert done.returncode == 1
    assert "bad_signature" in done.stderr
    assert "intruder.example" not in done.stdout


def test_cli_verify_fails_with_another_authority_key(tmp_path: Path) -> None:
    keygen(tmp_path)
    assert sign(tmp_path, 1, "a.gov").returncode == 0
    other = encode_verify_key(generate_authority_key())
    done = cli("verify", "--authority-key", other, "list.json", cwd=tmp_path)
    assert done.returncode == 1
    assert "wrong_key" in done.stderr


def test_cli_sign_refuses_a_version_not_above_the_existing_list(tmp_path: Path) -> None:
    keygen(tmp_path)
    assert sign(tmp_path, 5, "a.gov").returncode == 0
    before = (tmp_path / "list.json").read_bytes()
    again = sign(tmp_path, 5, "b.gov")
    assert again.returncode == 1
    assert "not greater than version 5" in again.stderr
    assert (tmp_path / "list.json").read_bytes() == before


def test_cli_sign_with_force_overwrites_an_equal_version(tmp_path: Path) -> None:
    pub = keygen(tmp_path)
    assert sign(tmp_path, 5, "a.gov").returncode == 0
    assert sign(tmp_path, 5, "b.gov", extra=("--force",)).returncode == 0
    assert verify_list((tmp_path / "list.json").read_bytes(), pub, NOW).servers == {"b.gov"}


def test_cli_sign_reports_added_and_removed_servers(tmp_path: Path) -> None:
    keygen(tmp_path)
    assert sign(tmp_path, 1, "a.gov", "b.gov").returncode == 0
    done = sign(tmp_path, 2, "a.gov", "c.gov")
    assert "added: c.gov" in done.stdout
    assert "removed: b.gov" in done.stdout


def test_cli_sign_refuses_an_invalid_server_name(tmp_path: Path) -> None:
    keygen(tmp_path)
    done = sign(tmp_path, 1, "a.gov", "bad name")
    assert done.returncode == 1
    assert "invalid server name" in done.stderr
    assert not (tmp_path / "list.json").exists()


def test_script_wrapper_runs_the_cli(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run([str(REPO / "scripts" / "federation-list"), "keygen", "--out", "k"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "wrote authority signing key ed25519:auth_" in done.stdout
