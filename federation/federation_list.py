"""The signed federation list a national federation authority publishes.

A federation list names the servers that belong to a federation. It is a JSON object signed
with the spec's "Signing JSON" rules (canonical JSON without ``signatures`` and ``unsigned``)::

    {
      "version": 7,                         # integer, strictly increasing per publication
      "issued_ts": 1767225600000,           # milliseconds since the epoch
      "expires_ts": 1769904000000,          # optional; after it the list grants nothing
      "authority": "federation.gov.example",
      "servers": ["a.gov.example", "b.gov.example"],
      "signatures": {"federation.gov.example": {"ed25519:auth_1a2b3c4d": "<base64>"}}
    }

Nodes pin the authority's Ed25519 public key (``federation.federation_list.authority_key``)
and accept a list only when a signature by that key under the list's ``authority`` verifies.
Authority keys made by ``generate_authority_key`` carry a key ID derived from the public key
(``authority_key_id``), which lets ``verify_list`` tell "signed by another key" apart from
"altered after signing". Unknown top-level keys are allowed (and covered by the signature).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import MAX_SAFE_INT, decode_b64, encode_canonical_json
from protocol.discovery import is_valid_server_name
from protocol.errors import FederationListError, SignatureVerifyError
from protocol.signing import (
    SigningKey,
    VerifyKey,
    decode_verify_key,
    encode_verify_key,
    generate_signing_key,
    sign_json,
    verify_json_signature,
)

__all__ = [
    "FederationList",
    "FederationListError",
    "authority_key_id",
    "generate_authority_key",
    "decode_authority_key",
    "create_list",
    "parse_list_document",
    "verify_list",
    "format_ts",
]

_ALG = "ed25519"
_FINGERPRINT_PREFIX = "auth_"


@dataclass(frozen=True)
class FederationList:
    """A verified federation list."""

    version: int
    issued_ts: int
    expires_ts: int | None
    authority: str
    servers: frozenset[str]
    key_id: str
    document: dict[str, Any] = field(repr=False, compare=False)

    def __contains__(self, server_name: object) -> bool:
        return server_name in self.servers

    def is_expired(self, now_ms: int) -> bool:
        """Whether the list's ``expires_ts`` has passed at ``now_ms``."""
        return self.expires_ts is not None and now_ms >= self.expires_ts

    def canonical_bytes(self) -> bytes:
        """The signed document as canonical JSON (how it is persisted and compared)."""
        return encode_canonical_json(self.document)


def authority_key_id(public_key_b64: str) -> str:
    """The key ID ``"ed25519:auth_<8 hex>"`` derived from an authority public key."""
    raw = _public_key_bytes(public_key_b64)
    return f"{_ALG}:{_FINGERPRINT_PREFIX}{hashlib.sha256(raw).hexdigest()[:8]}"


def generate_authority_key() -> SigningKey:
    """A new authority signing key whose version is derived from its public key."""
    key = generate_signing_key("tmp")
    key_any: Any = key
    key_any.version = authority_key_id(encode_verify_key(key)).partition(":")[2]
    return key


def _public_key_bytes(public_key_b64: str) -> bytes:
    try:
        raw = decode_b64(public_key_b64.strip())
    except (ValueError, AttributeError) as exc:
        raise FederationListError(
            "bad_authority_key", f"the authority key is not valid base64: {exc}") from exc
    if len(raw) != 32:
        raise FederationListError(
            "bad_authority_key",
            f"the authority key must be a 32-byte Ed25519 public key, got {len(raw)} bytes")
    return raw


def decode_authority_key(public_key_b64: str) -> VerifyKey:
    """The pinned authority key as a verify key (``FederationListError`` if invalid)."""
    key_id = authority_key_id(public_key_b64)
    try:
        return decode_verify_key(key_id, public_key_b64.strip())
    except (ValueError, nacl.exceptions.CryptoError) as exc:
        raise FederationListError(
            "bad_authority_key", f"the authority key is not an Ed25519 public key: {exc}") from exc


def _check_servers(servers: Any) -> list[str]:
    if not isinstance(servers, list | tuple):
        raise FederationListError("malformed", "'servers' must be a list of server names")
    invalid = [s for s in servers if not is_valid_server_name(s)]
    if invalid:
        shown = ", ".join(repr(s) for s in invalid[:5])
        more = f" and {len(invalid) - 5} more" if len(invalid) > 5 else ""
        raise FederationListError(
            "invalid_server_name", f"invalid server name(s) in the list: {shown}{more}")
    return list(servers)


def _is_int(value: Any, minimum: int = 0) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and minimum <= value <= MAX_SAFE_INT)


def create_list(
    servers: Iterable[str],
    version: int,
    authority: str,
    key: SigningKey,
    expires_ts: int | None = None,
    *,
    issued_ts: int,
) -> dict[str, Any]:
    """A federation list document signed by ``key`` as ``authority``.

    Server names are de-duplicated and sorted; ``issued_ts`` is the signing time (ms).
    Raises ``FederationListError`` for invalid input.
    """
    names = sorted(set(_check_servers(list(servers))))
    if not _is_int(version, 1):
        raise FederationListError("malformed", f"version must be a positive integer, got {version!r}")
    if not isinstance(authority, str) or not authority.strip():
        raise FederationListError("malformed", "authority must be a non-empty name")
    issued = issued_ts
    if not _is_int(issued):
        raise FederationListError("malformed", f"issued_ts must be a timestamp, got {issued!r}")
    doc: dict[str, Any] = {
        "version": version,
        "issued_ts": issued,
        "authority": authority,
        "servers": names,
    }
    if expires_ts is not None:
        if not _is_int(expires_ts) or expires_ts <= issued:
            raise FederationListError(
                "malformed", f"expires_ts must be a timestamp after issued_ts, got {expires_ts!r}")
        doc["expires_ts"] = expires_ts
    return sign_json(doc, authority, key)


def parse_list_document(data: bytes | str | Mapping[str, Any] | Any) -> dict[str, Any]:
    """A federation list document from JSON bytes/text or a mapping (``malformed`` if not)."""
    if isinstance(data, bytes | bytearray | str):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FederationListError("malformed", f"the list is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise FederationListError("malformed", "the list must be a JSON object")
    return dict(data)


def _check_shape(doc: dict[str, Any]) -> None:
    if not _is_int(doc.get("version"), 1):
        raise FederationListError("malformed", "'version' must be a positive integer")
    if not _is_int(doc.get("issued_ts")):
        raise FederationListError("malformed", "'issued_ts' must be a timestamp in milliseconds")
    if "expires_ts" in doc and not _is_int(doc["expires_ts"]):
        raise FederationListError("malformed", "'expires_ts' must be a timestamp in milliseconds")
    authority = doc.get("authority")
    if not isinstance(authority, str) or not authority:
        raise FederationListError("malformed", "'authority' must be a non-empty string")
    if not isinstance(doc.get("servers"), list):
        raise FederationListError("malformed", "'servers' must be a list of server names")
    try:
        encode_canonical_json({k: v for k, v in doc.items() if k != "signatures"})
    except (ValueError, TypeError) as exc:
        raise FederationListError("malformed", f"the list is not canonical JSON: {exc}") from exc


def _check_signature(doc: dict[str, Any], verify_key: VerifyKey, pinned_id: str) -> str:
    """The key ID whose signature verified; ``FederationListError`` otherwise."""
    authority = doc["authority"]
    signatures = doc.get("signatures")
    if not isinstance(signatures, dict) or not signatures:
        raise FederationListError("unsigned", "the list is unsigned (no 'signatures')")
    by_authority = signatures.get(authority)
    if not isinstance(by_authority, dict) or not by_authority:
        signers = ", ".join(sorted(str(s) for s in signatures)) or "nobody"
        raise FederationListError(
            "unsigned", f"the list carries no signature by its authority {authority!r} "
                        f"(signed by: {signers})")
    key_ids = sorted(k for k in by_authority if isinstance(k, str) and k.startswith(f"{_ALG}:"))
    if not key_ids:
        raise FederationListError(
            "unsigned", f"the list carries no ed25519 signature by {authority!r}")
    for key_id in key_ids:
        # signedjson looks the signature up by the verify key's ID, so give it each one in turn.
        candidate: Any = nacl.signing.VerifyKey(verify_key.encode())
        candidate.alg, _, candidate.version = key_id.partition(":")
        try:
            verify_json_signature(doc, authority, candidate)
            return key_id
        except SignatureVerifyError:
            continue
    if pinned_id in key_ids:
        raise FederationListError(
            "bad_signature",
            f"the signature by the pinned authority key {pinned_id} does not verify: "
            "the list was altered after signing or the signature is corrupt")
    if all(k.startswith(f"{_ALG}:{_FINGERPRINT_PREFIX}") for k in key_ids):
        raise FederationListError(
            "wrong_key",
            f"the list is signed by {', '.join(key_ids)}, not by the pinned authority key "
            f"{pinned_id}: check federation.federation_list.authority_key")
    raise FederationListError(
        "bad_signature",
        f"no signature by {authority!r} ({', '.join(key_ids)}) verifies with the pinned "
        f"authority key {pinned_id}: a different key signed it, or the list was altered")


def verify_list(
    doc: bytes | str | Mapping[str, Any] | Any,
    authority_public_key_b64: str,
    now_ms: int | None,
) -> FederationList:
    """Check a federation list and return it; ``FederationListError`` says why it is refused.

    Checks, in order: JSON object shape (``malformed``), the pinned key itself
    (``bad_authority_key``), a signature by the list's authority (``unsigned``), that it verifies
    with the pinned key (``bad_signature`` / ``wrong_key``), server names
    (``invalid_server_name``) and expiry at ``now_ms`` (``expired``; ``None`` skips this check,
    e.g. to read the version of a stored list).
    """
    document = parse_list_document(doc)
    verify_key = decode_authority_key(authority_public_key_b64)
    pinned_id = authority_key_id(authority_public_key_b64)
    _check_shape(document)
    key_id = _check_signature(document, verify_key, pinned_id)
    servers = _check_servers(document["servers"])
    expires_ts = document.get("expires_ts")
    if now_ms is not None and expires_ts is not None and now_ms >= expires_ts:
        raise FederationListError(
            "expired", f"the list (version {document['version']}) expired at "
                       f"{format_ts(expires_ts)}")
    return FederationList(
        version=document["version"],
        issued_ts=document["issued_ts"],
        expires_ts=expires_ts,
        authority=document["authority"],
        servers=frozenset(servers),
        key_id=key_id,
        document=document,
    )


def format_ts(ts_ms: int) -> str:
    """A millisecond timestamp as a UTC date and time for messages."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts_ms / 1000))
