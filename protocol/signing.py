"""Server signing keys and ed25519 signatures over JSON objects and events.

Key files use signedjson's one-line format ``"ed25519 <version> <unpadded base64 seed>"``
and are written with mode 0600.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Sequence
from typing import Any

import nacl.exceptions
import nacl.signing
from signedjson.key import (
    decode_signing_key_base64,
    decode_verify_key_bytes,
    get_verify_key,
)
from signedjson.types import SigningKey, VerifyKey

from protocol.canonical import decode_b64, encode_canonical_json, unpadded_b64
from protocol.errors import SignatureVerifyError
from protocol.hashing import redacted_canonical_bytes
from protocol.room_versions import RoomVersion

__all__ = [
    "SigningKey",
    "VerifyKey",
    "generate_signing_key",
    "signing_key_from_seed",
    "encode_signing_key_seed",
    "read_signing_key_file",
    "read_signing_keys_file",
    "write_signing_key_file",
    "get_verify_key",
    "verify_key_id",
    "encode_verify_key",
    "decode_verify_key",
    "sign_canonical_bytes",
    "sign_json",
    "verify_json_signature",
    "sign_event",
    "verify_event_signature",
    "server_name_of",
    "servers_required_to_sign",
]

_ALG = "ed25519"
_VERSION_CHARS = string.ascii_letters + string.digits


def generate_signing_key(version: str | None = None) -> SigningKey:
    """A new ed25519 signing key; the version defaults to ``"a_"`` + 4 random chars."""
    if version is None:
        version = "a_" + "".join(secrets.choice(_VERSION_CHARS) for _ in range(4))
    key: Any = nacl.signing.SigningKey.generate()
    key.alg = _ALG
    key.version = version
    result: SigningKey = key
    return result


def signing_key_from_seed(seed_b64: str, version: str) -> SigningKey:
    """Build an ed25519 signing key from its base64 32-byte seed."""
    key: SigningKey = decode_signing_key_base64(_ALG, version, seed_b64)
    return key


def encode_signing_key_seed(key: SigningKey) -> str:
    """The unpadded base64 seed of a signing key."""
    return unpadded_b64(key.encode())


def read_signing_keys_file(path: str | os.PathLike[str]) -> list[SigningKey]:
    """All signing keys in a key file (one ``"alg version seed"`` per line)."""
    keys: list[SigningKey] = []
    with open(path, encoding="ascii") as stream:
        for lineno, line in enumerate(stream, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3 or parts[0] != _ALG:
                raise ValueError(f"{path}:{lineno}: expected 'ed25519 <version> <base64 seed>'")
            keys.append(signing_key_from_seed(parts[2], parts[1]))
    return keys


def read_signing_key_file(path: str | os.PathLike[str]) -> SigningKey:
    """The first signing key in a key file."""
    keys = read_signing_keys_file(path)
    if not keys:
        raise ValueError(f"{path}: no signing key found")
    return keys[0]


def write_signing_key_file(
    path: str | os.PathLike[str], key: SigningKey | Sequence[SigningKey]
) -> None:
    """Write one or more keys to ``path`` with file mode 0600 (created or truncated)."""
    keys: list[SigningKey] = list(key) if isinstance(key, list | tuple) else [key]  # type: ignore[list-item]
    data = "".join(f"{k.alg} {k.version} {encode_signing_key_seed(k)}\n" for k in keys)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data.encode("ascii"))
    finally:
        os.close(fd)


def verify_key_id(key: SigningKey | VerifyKey) -> str:
    """The key identifier, e.g. ``"ed25519:a_AbCd"``."""
    return f"{key.alg}:{key.version}"


def encode_verify_key(key: SigningKey | VerifyKey) -> str:
    """Unpadded base64 of the public key (for /_matrix/key/v2/server)."""
    verify: Any = get_verify_key(key) if hasattr(key, "sign") else key  # type: ignore[arg-type]
    return unpadded_b64(verify.encode())


def decode_verify_key(key_id: str, key_b64: str) -> VerifyKey:
    """A verify key from its ``"ed25519:<version>"`` id and base64 public key."""
    alg, _, version = key_id.partition(":")
    if alg != _ALG or not version:
        raise ValueError(f"unsupported key id {key_id!r}")
    key: VerifyKey = decode_verify_key_bytes(key_id, decode_b64(key_b64))
    return key


def sign_canonical_bytes(message: bytes, key: SigningKey) -> str:
    """Unpadded base64 ed25519 signature of already-canonical bytes."""
    return unpadded_b64(key.sign(message).signature)


def sign_json(obj: dict[str, Any], server_name: str, key: SigningKey) -> dict[str, Any]:
    """Sign ``obj`` in place (and return it) per the spec's "Signing JSON"."""
    to_sign = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    signature = sign_canonical_bytes(encode_canonical_json(to_sign), key)
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict):
        signatures = {}
        obj["signatures"] = signatures
    signatures.setdefault(server_name, {})[verify_key_id(key)] = signature
    return obj


def _verify_bytes(message: bytes, signatures: Any, server_name: str, verify_key: VerifyKey) -> None:
    if not isinstance(signatures, dict):
        raise SignatureVerifyError("no signatures")
    server_sigs = signatures.get(server_name)
    if not isinstance(server_sigs, dict):
        raise SignatureVerifyError(f"no signatures from {server_name}")
    key_id = verify_key_id(verify_key)
    signature_b64 = server_sigs.get(key_id)
    if not isinstance(signature_b64, str):
        raise SignatureVerifyError(f"no signature from {server_name} with key {key_id}")
    try:
        signature = decode_b64(signature_b64)
    except ValueError as exc:
        raise SignatureVerifyError(f"malformed signature from {server_name}") from exc
    try:
        verify_key.verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
        raise SignatureVerifyError(
            f"invalid signature from {server_name} with key {key_id}"
        ) from exc


def verify_json_signature(obj: dict[str, Any], server_name: str, verify_key: VerifyKey) -> None:
    """Check ``obj`` carries a valid signature by ``server_name`` with ``verify_key``."""
    unsigned_obj = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    _verify_bytes(
        encode_canonical_json(unsigned_obj), obj.get("signatures"), server_name, verify_key
    )


def sign_event(
    pdu: dict[str, Any], server_name: str, key: SigningKey, room_version: RoomVersion
) -> None:
    """Sign the redacted form of ``pdu`` and store the signature in ``pdu["signatures"]``.

    The content hash must already be present (see ``hashing.add_content_hash``).
    """
    signature = sign_canonical_bytes(redacted_canonical_bytes(pdu, room_version), key)
    signatures = pdu.get("signatures")
    if not isinstance(signatures, dict):
        signatures = {}
        pdu["signatures"] = signatures
    signatures.setdefault(server_name, {})[verify_key_id(key)] = signature


def verify_event_signature(
    pdu: dict[str, Any], server_name: str, verify_key: VerifyKey, room_version: RoomVersion
) -> None:
    """Check ``server_name``'s signature on the redacted form of ``pdu``.

    Raises ``SignatureVerifyError``. Succeeds on full and on redacted copies alike.
    """
    _verify_bytes(
        redacted_canonical_bytes(pdu, room_version), pdu.get("signatures"), server_name, verify_key
    )


def server_name_of(identifier: str) -> str:
    """The server name part of a user ID (``@local:server``)."""
    _, sep, server = identifier.partition(":")
    if not sep or not server:
        raise ValueError(f"identifier has no server name: {identifier!r}")
    return server


def servers_required_to_sign(pdu: dict[str, Any], room_version: RoomVersion) -> set[str]:
    """Server names whose signatures an incoming event must carry.

    The sender's server always; for restricted joins also the server of the
    ``join_authorised_via_users_server`` user (auth rule "validly signed by").
    """
    servers = {server_name_of(pdu["sender"])}
    content = pdu.get("content")
    if (
        room_version.restricted_join_rule
        and pdu.get("type") == "m.room.member"
        and isinstance(content, dict)
        and content.get("membership") == "join"
    ):
        authoriser = content.get("join_authorised_via_users_server")
        if isinstance(authoriser, str):
            servers.add(server_name_of(authoriser))
    return servers
