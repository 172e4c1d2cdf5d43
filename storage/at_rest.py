"""Encryption at rest: the node's data keys and the one cipher every store seals with.

Records are sealed with XChaCha20-Poly1305 (libsodium's IETF AEAD, through PyNaCl), each with a
fresh random 24-byte nonce, under the keyring's current data key.  The key ID travels beside each
record, so a record stays readable after a rotation as long as the keyring still holds its key,
and a row written before a key was configured (clear JSON, which always starts with ``{``) is
read as it is.

* Text columns hold ``ar1:<key id>:<base64 of nonce + ciphertext>``.  The authenticated data is
  the prefix and the column's *context* (``events.json``...), so a record moved to another
  column, or given another key ID, fails to open.
* Files (media) hold a 16-byte header (``BAR1``, key ID, 8 random bytes) then chunks of up to
  ``FILE_CHUNK`` plaintext bytes, each sealed with the header's 8 bytes plus its index as the
  nonce and the header plus a last-chunk flag as authenticated data: chunks cannot be reordered,
  dropped or cut off without the read failing.

A key ID is derived from the key (BLAKE2b), so a wrong key is known by its ID before anything is
decrypted.  Keys never live in the database: only the IDs of the keys data was sealed with
(``at_rest_keys``), which the node checks at start against its keyring.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nacl import bindings
from nacl._sodium import ffi, lib

if TYPE_CHECKING:
    from storage.database import Cursor

KEY_BYTES = bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES = bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_BYTES = bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
TEXT_MAGIC = "ar1:"
KEY_ID_CHARS = 8
# ``ar1:`` + key ID + ``:``: what a sealed text column starts with.
TEXT_PREFIX_CHARS = len(TEXT_MAGIC) + KEY_ID_CHARS + 1
FILE_MAGIC = b"BAR1"
FILE_HEADER_BYTES = len(FILE_MAGIC) + KEY_ID_CHARS // 2 + 8
FILE_CHUNK = 256 * 1024

# The contexts of the sealed columns and files (part of each record's authenticated data).
EVENTS_JSON = "events.json"
TO_DEVICE_CONTENT = "to_device_inbox.content"
KEY_BACKUP_SESSION = "room_key_backup_keys.session_data"
ACCOUNT_DATA_CONTENT = "account_data.content"
FEDERATION_PDU = "federation_outbound_pdus.pdu_json"
FEDERATION_EDU = "federation_outbound_edus.content_json"
REMOTE_INVITES_EVENT = "remote_invites.event_json"
REMOTE_INVITES_STATE = "remote_invites.invite_state"
REMOTE_KNOCKS_EVENT = "remote_knocks.event_json"
REMOTE_KNOCKS_STATE = "remote_knocks.knock_state"
APPS_CALLBACK_SECRET = "apps.callback_secret"
APP_OUTBOX = "app_outbox.contents"
MEDIA_FILE = "media"


class AtRestError(Exception):
    """Sealed data cannot be read: no key for it, or it was altered."""


class UnknownKey(AtRestError):
    """The record was sealed with a key the keyring does not hold."""


class Tampered(AtRestError):
    """The record does not authenticate under its key: altered, cut off or moved."""


def key_id_of(secret: bytes) -> str:
    """The key's ID: 8 hex digits of its BLAKE2b hash (a wrong key has another ID)."""
    return hashlib.blake2b(secret, digest_size=KEY_ID_CHARS // 2,
                           person=b"broker-at-rest").hexdigest()


@dataclass(frozen=True)
class DataKey:
    key_id: str
    secret: bytes = b""

    @staticmethod
    def generate() -> DataKey:
        return DataKey.of(os.urandom(KEY_BYTES))

    @staticmethod
    def of(secret: bytes) -> DataKey:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a data key is {KEY_BYTES} bytes, not {len(secret)}")
        return DataKey(key_id_of(secret), secret)

    def encoded(self) -> str:
        return base64.b64encode(self.secret).decode("ascii")


KEYRING_HEADER = (
    "# gov-broker data keys for encryption at rest: keep secret (mode 0600) and backed up.\n"
    "# One key a line, '<key id> <base64 key>'; the first seals new data, all of them read.\n")


def format_keyring(keys: Sequence[DataKey]) -> str:
    return KEYRING_HEADER + "".join(f"{k.key_id} {k.encoded()}\n" for k in keys)


def parse_keyring(text: str, source: str) -> list[DataKey]:
    """The keys in a keyring text (a key file or ``BROKER_AT_REST_KEY``): lines of
    ``<key id> <base64 key>`` or a bare base64 key; ValueError naming ``source`` if malformed."""
    keys: list[DataKey] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) > 2:
            raise ValueError(f"{source}:{lineno}: expected '<key id> <base64 key>'")
        try:
            key = DataKey.of(base64.b64decode(parts[-1], validate=True))
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"{source}:{lineno}: not a base64 {KEY_BYTES}-byte key") from e
        if len(parts) == 2 and parts[0] != key.key_id:
            raise ValueError(f"{source}:{lineno}: the key's ID is {key.key_id}, not {parts[0]}")
        keys.append(key)
    if not keys:
        raise ValueError(f"{source}: holds no key")
    return keys


class AtRest:
    """The keyring and its cipher; with no keys, encryption at rest is off (records are
    written clear, and a sealed record fails to read with :class:`UnknownKey`)."""

    def __init__(self, keys: Sequence[DataKey] = ()) -> None:
        self.replace_keys(keys)

    def replace_keys(self, keys: Sequence[DataKey]) -> None:
        """Use ``keys`` from now on (the first seals); one assignment, safe for the threads
        reading meanwhile."""
        self._state = (tuple(keys), {k.key_id: k.secret for k in keys})

    @property
    def enabled(self) -> bool:
        return bool(self._state[0])

    @property
    def keys(self) -> tuple[DataKey, ...]:
        return self._state[0]

    @property
    def current(self) -> DataKey | None:
        keys = self._state[0]
        return keys[0] if keys else None

    def _secret(self, key_id: str) -> bytes:
        secret = self._state[1].get(key_id)
        if secret is None:
            where = "the keyring" if self.enabled else "no keyring (encryption at rest is off)"
            raise UnknownKey(f"data sealed with at-rest key {key_id}, which {where} lacks")
        return secret

    # -- text columns ------------------------------------------------------------------------
    def seal(self, context: str, text: str) -> str:
        """``text`` sealed for a column (returned as it is when encryption is off)."""
        current = self.current
        if current is None:
            return text
        return seal_with(current, context, text)

    def open(self, context: str, stored: str) -> str:
        """The clear text of a column's value (a clear value is returned as it is)."""
        if not stored.startswith(TEXT_MAGIC):
            return stored
        prefix = stored[:TEXT_PREFIX_CHARS]
        secret = self._secret(prefix[len(TEXT_MAGIC):-1])
        try:
            blob = binascii.a2b_base64(stored[TEXT_PREFIX_CHARS:])
        except (binascii.Error, ValueError) as e:
            raise Tampered(f"a sealed {context} value is not base64") from e
        clear = _decrypt(blob[NONCE_BYTES:], (prefix + context).encode(), blob[:NONCE_BYTES],
                         secret)
        if clear is None:
            raise Tampered(f"a sealed {context} value does not authenticate")
        return clear.decode("utf-8")

    def seal_json(self, context: str, value: Any) -> str:
        """``value`` as compact JSON, sealed for a column."""
        return self.seal(context, json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def open_json(self, context: str, stored: str) -> Any:
        """A JSON column's value as stored (sealed or clear), decoded."""
        return json.loads(self.open(context, stored))

    # -- files ---------------------------------------------------------------------------------
    def seal_chunks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """A file's bytes, sealed (as they are when encryption is off)."""
        current = self.current
        if current is None:
            yield from chunks
            return
        header = FILE_MAGIC + bytes.fromhex(current.key_id) + os.urandom(8)
        yield header
        pending = b""
        index = 0
        for chunk in chunks:
            pending += chunk
            while len(pending) > FILE_CHUNK:
                yield _seal_chunk(current.secret, header, index, pending[:FILE_CHUNK], False)
                pending = pending[FILE_CHUNK:]
                index += 1
        yield _seal_chunk(current.secret, header, index, pending, True)

    def open_chunks(self, read: Iterator[bytes], stored_size: int, head: bytes) -> Iterator[bytes]:
        """The clear bytes of a file whose first bytes are ``head``: ``read`` yields the rest
        (sealed: in pieces of ``FILE_CHUNK + TAG_BYTES``), ``stored_size`` is its size."""
        if not is_sealed_file(head):
            if head:
                yield head
            yield from read
            return
        secret = self._secret(head[len(FILE_MAGIC):len(FILE_MAGIC) + KEY_ID_CHARS // 2].hex())
        remaining = stored_size - FILE_HEADER_BYTES
        index = 0
        for piece in read:
            remaining -= len(piece)
            yield _open_chunk(secret, head, index, piece, remaining <= 0)
            index += 1
        if index == 0 or remaining != 0:
            raise Tampered("a sealed media file is cut off")


def _encrypt(message: bytes, aad: bytes, nonce: bytes, secret: bytes) -> bytes:
    """XChaCha20-Poly1305 (libsodium's IETF AEAD) straight through PyNaCl's cffi library:
    its public wrapper formats every error message on every call, which doubles the cost of
    a small record.  The lengths are right by construction (keys of ``DataKey.of``, nonces
    made here)."""
    out = ffi.new("unsigned char[]", len(message) + TAG_BYTES)
    out_len = ffi.new("unsigned long long *")
    lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, out_len, message, len(message), aad, len(aad), ffi.NULL, nonce, secret)
    return bytes(ffi.buffer(out, out_len[0]))


def _decrypt(sealed: bytes, aad: bytes, nonce: bytes, secret: bytes) -> bytes | None:
    """The clear bytes, or None when ``sealed`` does not authenticate."""
    if len(sealed) < TAG_BYTES or len(nonce) != NONCE_BYTES:
        return None
    out = ffi.new("unsigned char[]", max(1, len(sealed) - TAG_BYTES))
    out_len = ffi.new("unsigned long long *")
    if lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
            out, out_len, ffi.NULL, sealed, len(sealed), aad, len(aad), nonce, secret) != 0:
        return None
    return bytes(ffi.buffer(out, out_len[0]))


def seal_with(key: DataKey, context: str, text: str) -> str:
    prefix = f"{TEXT_MAGIC}{key.key_id}:"
    nonce = os.urandom(NONCE_BYTES)
    sealed = _encrypt(text.encode("utf-8"), (prefix + context).encode(), nonce, key.secret)
    return prefix + binascii.b2a_base64(nonce + sealed, newline=False).decode("ascii")


def sealed_key_id(stored: str) -> str | None:
    """The key ID a text value was sealed with, None for a clear value."""
    if not stored.startswith(TEXT_MAGIC):
        return None
    return stored[len(TEXT_MAGIC):TEXT_PREFIX_CHARS - 1]


def is_sealed_file(head: bytes) -> bool:
    return len(head) >= FILE_HEADER_BYTES and head.startswith(FILE_MAGIC)


def sealed_file_key_id(head: bytes) -> str | None:
    """The key ID a file (its first ``FILE_HEADER_BYTES``) was sealed with; None if clear."""
    if not is_sealed_file(head):
        return None
    return head[len(FILE_MAGIC):len(FILE_MAGIC) + KEY_ID_CHARS // 2].hex()


def clear_size(head: bytes, stored_size: int) -> int:
    """The clear size of a stored file (its first bytes ``head``, its size on disk)."""
    if not is_sealed_file(head):
        return stored_size
    body = stored_size - FILE_HEADER_BYTES
    chunks = max(1, -(-body // (FILE_CHUNK + TAG_BYTES)))
    return body - chunks * TAG_BYTES


def _chunk_nonce(header: bytes, index: int) -> bytes:
    return header[-8:] + bytes(NONCE_BYTES - 16) + struct.pack(">Q", index)


def _seal_chunk(secret: bytes, header: bytes, index: int, data: bytes, last: bool) -> bytes:
    return _encrypt(data, header + (b"\x01" if last else b"\x00"), _chunk_nonce(header, index),
                    secret)


def _open_chunk(secret: bytes, header: bytes, index: int, piece: bytes, last: bool) -> bytes:
    clear = _decrypt(piece, header + (b"\x01" if last else b"\x00"),
                     _chunk_nonce(header, index), secret)
    if clear is None:
        raise Tampered("a sealed media file does not authenticate")
    return clear


# -- the keys data was sealed with (IDs only) ----------------------------------------------------
def register_key_txn(cur: Cursor, key_id: str, now_ms: int) -> None:
    """Record that data may be sealed with ``key_id`` (before anything is)."""
    if cur.select_one("SELECT 1 FROM at_rest_keys WHERE key_id = ?", (key_id,)) is None:
        cur.execute("INSERT INTO at_rest_keys (key_id, added_ts) VALUES (?, ?)", (key_id, now_ms))


def check_keyring_txn(cur: Cursor, at_rest: AtRest, now_ms: int) -> None:
    """Refuse a keyring that lacks a key the database's data may be sealed with (a wrong or
    missing key), then record the current key: raises :class:`UnknownKey` with one line."""
    used = [row[0] for row in cur.select_all("SELECT key_id FROM at_rest_keys ORDER BY key_id")]
    held = {k.key_id for k in at_rest.keys}
    missing = [key_id for key_id in used if key_id not in held]
    if missing:
        if not at_rest.enabled:
            raise UnknownKey(
                f"this database holds data encrypted at rest (key {', '.join(missing)}) but no"
                " at-rest key is configured: set at_rest.key_file or BROKER_AT_REST_KEY")
        raise UnknownKey(
            f"the at-rest keyring lacks key {', '.join(missing)} that this database's data is"
            f" sealed with (it holds {', '.join(sorted(held))}): wrong key file?")
    if at_rest.current is not None:
        register_key_txn(cur, at_rest.current.key_id, now_ms)
