"""The node's own signing keys on disk: rotation and the file of retired ("old") keys.

The signing key file (``signing_key_path``) holds the current key(s), one
``ed25519 <version> <base64 seed>`` per line, mode 0600. Rotation writes a new key there and
moves the previous public keys to the old keys file beside it, ``<signing_key_path>.old``:

    # <algorithm> <version> <unpadded base64 public key> <expired_ts (ms since epoch)>
    ed25519 a_AbCd Kqs6t0Ag3... 1767225600000

Only public keys are kept (a retired private key has no use and would be a liability). Other
servers verify what we signed before ``expired_ts`` with them: ``GET /_matrix/key/v2/server``
lists them under ``old_verify_keys``. The node reads both files at start, so restart it after
a rotation.

    python -m broker.key_admin --config homeserver.yaml     (scripts/rotate-signing-key)
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from broker.clock import real_clock
from protocol.signing import (
    SigningKey,
    VerifyKey,
    decode_verify_key,
    encode_verify_key,
    generate_signing_key,
    get_verify_key,
    read_signing_keys_file,
    verify_key_id,
    write_signing_key_file,
)

_HEADER = "# <algorithm> <version> <unpadded base64 public key> <expired_ts (ms since epoch)>\n"


@dataclass(frozen=True)
class OldKey:
    """A retired public key and the time after which it verifies nothing new."""

    key_id: str
    key: VerifyKey
    expired_ts: int


@dataclass(frozen=True)
class RotationResult:
    new_key_id: str
    retired_key_ids: tuple[str, ...]
    signing_key_path: Path
    old_keys_path: Path
    expired_ts: int


def old_keys_path(signing_key_path: str | os.PathLike[str]) -> Path:
    """Where the old keys of ``signing_key_path`` live: the same name plus ``.old``."""
    path = Path(signing_key_path)
    return path.with_name(path.name + ".old")


def read_old_keys(path: str | os.PathLike[str]) -> list[OldKey]:
    """The old keys in ``path`` (none if the file does not exist); ValueError if malformed."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    keys: list[OldKey] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 4 or parts[0] != "ed25519" or not (parts[3].isascii() and parts[3].isdigit()):
            raise ValueError(
                f"{path}:{lineno}: expected 'ed25519 <version> <base64 public key> <expired_ts>'"
            )
        key_id = f"{parts[0]}:{parts[1]}"
        try:
            key = decode_verify_key(key_id, parts[2])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: invalid public key") from exc
        keys.append(OldKey(key_id, key, int(parts[3])))
    return keys


def write_old_keys(path: str | os.PathLike[str], keys: list[OldKey]) -> None:
    """Replace ``path`` atomically with ``keys``."""
    lines = [_HEADER] + [
        f"{k.key_id.replace(':', ' ', 1)} {encode_verify_key(k.key)} {k.expired_ts}\n"
        for k in keys
    ]
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, "".join(lines).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)


def published_old_keys(signing_key_path: str | os.PathLike[str],
                       current: list[SigningKey]) -> list[OldKey]:
    """Old keys to publish: those in the old keys file that are not current keys."""
    current_ids = {verify_key_id(k) for k in current}
    return [k for k in read_old_keys(old_keys_path(signing_key_path))
            if k.key_id not in current_ids]


def own_verify_keys(signing_key_path: str | os.PathLike[str],
                    current: list[SigningKey]) -> dict[str, VerifyKey]:
    """Every public key of ours by key ID, current and old (for the keyring)."""
    keys: dict[str, VerifyKey] = {
        k.key_id: k.key for k in published_old_keys(signing_key_path, current)
    }
    for key in current:
        keys[verify_key_id(key)] = get_verify_key(key)
    return keys


def rotate_signing_key(signing_key_path: str | os.PathLike[str], now_ms: int,
                       version: str | None = None) -> RotationResult:
    """Replace the signing key with a new one; the previous keys become old keys.

    The old keys file is written first: if the process dies in between, the previous key is
    both current and old, and the old entry is simply ignored until the next rotation.
    """
    path = Path(signing_key_path)
    current = read_signing_keys_file(path)
    taken = {verify_key_id(k) for k in current}
    old_path = old_keys_path(path)
    old = [k for k in read_old_keys(old_path) if k.key_id not in taken]
    taken |= {k.key_id for k in old}
    new_key = generate_signing_key(version)
    while verify_key_id(new_key) in taken:
        if version is not None:
            raise ValueError(f"key id {verify_key_id(new_key)} is already in use")
        new_key = generate_signing_key()
    retired = [OldKey(verify_key_id(k), get_verify_key(k), now_ms) for k in current]
    write_old_keys(old_path, old + retired)
    tmp = path.with_name(path.name + ".tmp")
    write_signing_key_file(tmp, new_key)
    os.replace(tmp, path)
    return RotationResult(
        new_key_id=verify_key_id(new_key),
        retired_key_ids=tuple(k.key_id for k in retired),
        signing_key_path=path,
        old_keys_path=old_path,
        expired_ts=now_ms,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rotate-signing-key",
        description="Generate a new server signing key; the previous one becomes an old key.",
    )
    parser.add_argument("--config", required=True, help="the node's homeserver.yaml")
    args = parser.parse_args(argv)
    from broker.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"ConfigError: {exc}", file=sys.stderr)
        return 2
    try:
        result = rotate_signing_key(config.signing_key_path, real_clock().time_ms())
    except (OSError, ValueError) as exc:
        print(f"rotate-signing-key: {exc}", file=sys.stderr)
        return 1
    print(f"new signing key {result.new_key_id} written to {result.signing_key_path}")
    for key_id in result.retired_key_ids:
        print(f"retired {key_id} (expired_ts {result.expired_ts}) into {result.old_keys_path}")
    print("restart the node to start signing with the new key")
    return 0


if __name__ == "__main__":
    sys.exit(main())
