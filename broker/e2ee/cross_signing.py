"""Cross-signing (Client-Server "Cross-signing", Server-Server ``m.signing_key_update``).

A user's master key signs their self-signing key (which signs their own devices) and their
user-signing key (which signs other users' master keys).  The node checks what it is given --
shapes, usages, owners and every signature it can verify -- stores the public keys and the
signatures, and shows them in ``/keys/query``.  It never holds a private key.

What this module offers:

* :func:`parse_cross_signing_key`, :func:`check_signed_by` -- validation used by the endpoints;
* :func:`store_uploaded_keys`, :func:`upload_signatures` -- the two uploads, after validation
  (``broker/client_api/cross_signing.py`` owns the HTTP side and user-interactive auth);
* :func:`add_cross_signing_to_query` -- fills ``master_keys``/``self_signing_keys``/
  ``user_signing_keys`` of a ``/keys/query`` answer and merges stored signatures into its
  ``device_keys``; :func:`add_cross_signing_to_federation_query` does the same for
  ``/_matrix/federation/v1/user/keys/query`` (no user-signing keys, only public signatures);
* :func:`store_remote_cross_signing_keys` -- caches a remote user's master/self-signing keys
  (checked) from a federation ``/user/keys/query`` answer or an ``m.signing_key_update`` EDU;
* :func:`on_signing_key_update` -- the inbound EDU.

A change of a user's cross-signing keys, and a new signature over their own keys, is a
device-list change for that user: the store records it in ``device_list_changes`` (read by
:mod:`broker.e2ee.device_lists` for /sync and /keys/changes) at its own stream position, the syncs
of the user and of the local users sharing a room with them are woken, and other servers sharing
a room are told -- an ``m.signing_key_update`` EDU for the master and self-signing keys, an
``m.device_list_update`` (through :func:`broker.e2ee.device_lists.publish_device_updates`) for a
newly signed device.  A signature over another user's master key is only visible to its signer,
so only the signer's syncs are woken.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, verify_signed_json

from broker.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    MalformedContent,
    MissingInput,
)
from protocol.canonical import decode_b64
from protocol.signing import server_name_of
from storage.cross_signing import (
    MASTER,
    SELF_SIGNING,
    USER_SIGNING,
    ListChange,
    Signature,
    key_id_of,
    public_key_of,
)

if TYPE_CHECKING:
    from broker.e2ee.context import E2ee

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

SIGNING_KEY_UPDATE = "m.signing_key_update"
FEDERATION_QUERY_PATH = "/_matrix/federation/v1/user/keys/query"
# Request fields of /keys/device_signing/upload and /keys/query, by usage.
FIELDS = {MASTER: "master_key", SELF_SIGNING: "self_signing_key",
          USER_SIGNING: "user_signing_key"}
QUERY_FIELDS = {MASTER: "master_keys", SELF_SIGNING: "self_signing_keys",
                USER_SIGNING: "user_signing_keys"}
ED25519_KEY_BYTES = 32
MAX_SIGNED_OBJECTS = 1000


class SignatureFailure(Exception):
    """One key of a /keys/signatures/upload request could not be used."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message

    def to_json(self) -> JsonDict:
        return {"errcode": self.errcode, "error": self.message}


# -- validation ------------------------------------------------------------------------------------
def parse_cross_signing_key(value: Any, user_id: str, usage: str, field: str) -> JsonDict:
    """Check a CrossSigningKey object of ``usage`` belonging to ``user_id``.

    Its ``keys`` must hold exactly one ``ed25519:<unpadded base64 public key>`` whose value is
    that public key.  Wrong JSON types are 400 M_BAD_JSON, wrong values 400 M_INVALID_PARAM.
    """
    if not isinstance(value, dict):
        raise MalformedContent(f"'{field}' must be an object")
    if value.get("user_id") != user_id:
        raise InvalidInput(f"'{field}.user_id' must be {user_id}")
    usages = value.get("usage")
    if not isinstance(usages, list) or not all(isinstance(u, str) for u in usages):
        raise MalformedContent(f"'{field}.usage' must be an array of strings")
    if usage not in usages:
        raise InvalidInput(f"'{field}.usage' must contain {usage!r}")
    keys = value.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise InvalidInput(f"'{field}.keys' must hold exactly one key")
    key_id, public = next(iter(keys.items()))
    algorithm, _, name = str(key_id).partition(":")
    if algorithm != "ed25519" or name != public or not _is_ed25519_public_key(public):
        raise InvalidInput(
                          f"'{field}.keys' must map 'ed25519:<public key>' to the unpadded "
                          "base64 Ed25519 public key")
    signatures = value.get("signatures", {})
    if not isinstance(signatures, dict) or not all(
            isinstance(by_key, dict) and all(isinstance(s, str) for s in by_key.values())
            for by_key in signatures.values()):
        raise MalformedContent(f"'{field}.signatures' is malformed")
    return value


def _is_ed25519_public_key(public: Any) -> bool:
    if not isinstance(public, str) or "=" in public:
        return False
    try:
        return len(decode_b64(public)) == ED25519_KEY_BYTES
    except Exception:
        return False


def check_signed_by(obj: JsonDict, signer_user_id: str, key_id: str, public_key: str) -> bool:
    """Whether ``obj`` carries a valid signature of ``signer_user_id`` by the Ed25519 key
    ``public_key`` under ``key_id`` (``ed25519:<public key>`` or ``ed25519:<device id>``)."""
    signature = signatures_by(obj, signer_user_id).get(key_id)
    if not isinstance(signature, str):
        return False
    try:
        verify_key = decode_verify_key_bytes(key_id, decode_b64(public_key))
        verify_signed_json(obj, signer_user_id, verify_key)
    except (SignatureVerifyException, ValueError, TypeError, KeyError):
        return False
    except Exception:  # canonical JSON refuses some values (floats out of range...)
        return False
    return True


def signatures_by(obj: JsonDict, signer_user_id: str) -> dict[str, Any]:
    """``obj["signatures"][signer_user_id]``, or {} when absent or malformed."""
    signatures = obj.get("signatures")
    by_signer = signatures.get(signer_user_id) if isinstance(signatures, dict) else None
    return by_signer if isinstance(by_signer, dict) else {}


def signed_by_master(key: JsonDict, master: JsonDict) -> bool:
    return check_signed_by(key, master["user_id"], key_id_of(master), public_key_of(master))


def _unsigned_part(obj: JsonDict) -> JsonDict:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def _with_signatures(obj: JsonDict, extra: dict[str, dict[str, str]]) -> JsonDict:
    """A copy of ``obj`` with ``extra`` (signer -> key id -> signature) merged in."""
    merged = copy.deepcopy(obj)
    if not isinstance(merged.get("signatures"), dict):
        merged["signatures"] = {}
    signatures = merged["signatures"]
    for signer, by_key in extra.items():
        signatures.setdefault(signer, {}).update(by_key)
    return merged


# -- uploads of keys ------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyUpload:
    """The checked keys of one /keys/device_signing/upload and what they change."""

    user_id: str
    keys: dict[str, JsonDict]  # usage -> key object, only the ones that differ from the stored
    current: dict[str, JsonDict]  # what was stored when the upload was checked

    @property
    def needs_auth(self) -> bool:
        """UIA is skipped when the user has no master key yet or nothing new is uploaded."""
        return MASTER in self.current and bool(self.keys)


async def check_key_upload(e2ee: E2ee, user_id: str, body: JsonDict) -> KeyUpload:
    """Validate the keys of a /keys/device_signing/upload body against what is stored."""
    new: dict[str, JsonDict] = {}
    for usage, field in FIELDS.items():
        if body.get(field) is not None:
            new[usage] = parse_cross_signing_key(body[field], user_id, usage, field)
    current = (await e2ee.stores.cross_signing.get_cross_signing_keys([user_id])).get(user_id, {})
    master = new.get(MASTER) or current.get(MASTER)
    for usage in (SELF_SIGNING, USER_SIGNING):
        key = new.get(usage)
        if key is None:
            continue
        if master is None:
            raise MissingInput("No master key is available")
        if not signed_by_master(key, master):
            raise InvalidInput(f"'{FIELDS[usage]}' is not signed by the master key",
                               errcode="M_INVALID_SIGNATURE")
    changed = {usage: key for usage, key in new.items() if current.get(usage) != key}
    if changed:
        devices = {d.device_id for d in await e2ee.stores.users.get_devices(user_id)}
        for key in changed.values():
            if public_key_of(key) in devices:
                raise Forbidden("Key ID in use by a device")
    return KeyUpload(user_id, changed, current)


async def store_uploaded_keys(e2ee: E2ee, upload: KeyUpload, *, authenticated: bool) -> bool:
    """Store a checked upload and publish the change.  Without ``authenticated`` the write only
    goes ahead if the stored master key is still the one the upload was checked against (so
    two concurrent first uploads cannot both skip UIA); returns False when it did not."""
    if not upload.keys:
        return True
    user_id = upload.user_id
    current_master = upload.current.get(MASTER)
    expected: Any = {} if authenticated else {
        "expected_master": key_id_of(current_master) if current_master else None}
    written: list[ListChange | None] = []

    def write(stream_id: int) -> Any:
        d = e2ee.stores.cross_signing.set_cross_signing_keys(user_id, upload.keys, stream_id,
                                                             **expected)
        return d.addCallback(written.append)

    local_peers, servers = await _room_peers(e2ee, user_id)
    await e2ee.write_with_stream_id(write, users={user_id} | local_peers)
    if written[0] is None:
        return False
    if {MASTER, SELF_SIGNING} & set(upload.keys) and servers:
        await _send_signing_key_update(e2ee, user_id, servers)
    return True


# -- uploads of signatures ------------------------------------------------------------------------
async def upload_signatures(e2ee: E2ee, user_id: str, body: JsonDict) -> JsonDict:
    """Check and store the signatures of a /keys/signatures/upload body made by ``user_id``;
    answers ``{"failures": {user_id: {key_id: {errcode, error}}}}``."""
    if not all(isinstance(v, dict) and all(isinstance(o, dict) for o in v.values())
               for v in body.values()):
        raise MalformedContent(
                          "The body must map user IDs to key IDs to signed objects")
    if sum(len(v) for v in body.values()) > MAX_SIGNED_OBJECTS:
        raise InvalidInput(
                          f"At most {MAX_SIGNED_OBJECTS} signed objects per request")
    keys = await e2ee.stores.cross_signing.get_cross_signing_keys([user_id, *body])
    own = keys.get(user_id, {})
    own_master_public = public_key_of(own[MASTER]) if MASTER in own else None
    own_device_ids = [k for k in body.get(user_id, {}) if k != own_master_public]
    devices = (await e2ee.stores.device_keys.get_device_keys(
        {user_id: own_device_ids}, include_display_names=False)).get(user_id, {}) \
        if own_device_ids else {}
    failures: dict[str, dict[str, JsonDict]] = {}
    device_signatures: list[Signature] = []
    master_signatures: list[Signature] = []
    other_signatures: list[Signature] = []
    for target_user, signed in body.items():
        for key_id, obj in signed.items():
            try:
                if target_user != user_id:
                    master = await _master_key_of(e2ee, target_user, keys)
                    other_signatures.append(
                        _check_other_master(user_id, own, target_user, master, key_id, obj))
                elif key_id == own_master_public:
                    master_signatures.extend(await _check_own_master(e2ee, user_id, own, obj))
                else:
                    device_signatures.append(
                        _check_own_device(user_id, own, devices, key_id, obj))
            except SignatureFailure as failure:
                failures.setdefault(target_user, {})[key_id] = failure.to_json()
    if device_signatures or master_signatures or other_signatures:
        await _store_signatures(e2ee, user_id, device_signatures, master_signatures,
                                other_signatures)
    return {"failures": failures}


async def _store_signatures(e2ee: E2ee, user_id: str, device_signatures: list[Signature],
                            master_signatures: list[Signature],
                            other_signatures: list[Signature]) -> None:
    """One transaction for every signature; each signed device and the master key (when
    signed) are device-list changes at their own stream position."""
    signed_devices = sorted({s.target_key_id for s in device_signatures})
    assert e2ee.stream is not None
    ids = e2ee.stream.allocate(1 + len(signed_devices))
    list_changes = [(user_id, device_id, sid) for device_id, sid in zip(
        signed_devices, ids[1:], strict=True)]
    if master_signatures:
        list_changes.append((user_id, "", ids[0]))
    try:
        changes = await e2ee.stores.cross_signing.add_signatures(
            [*device_signatures, *master_signatures, *other_signatures], ids[0],
            list_changes=list_changes)
    finally:
        e2ee.stream.finish(ids)
    if not device_signatures and not master_signatures:
        e2ee.notifier.notify(users=[user_id], position=ids[0])
        return
    local_peers, servers = await _room_peers(e2ee, user_id)
    e2ee.notifier.notify(users={user_id} | local_peers, position=max(ids))
    if master_signatures and servers:
        await _send_signing_key_update(e2ee, user_id, servers)
    device_changes = [c for c in changes if c.device_id]
    if device_changes:
        await _publish_signed_devices(e2ee, user_id, device_changes)


async def _publish_signed_devices(e2ee: E2ee, user_id: str, changes: list[ListChange]) -> None:
    """Send the signed devices' keys, with their signatures, as device-list updates."""
    from broker.e2ee.device_lists import DeviceUpdate, publish_device_updates
    from storage.device_keys import DeviceListChange

    response: JsonDict = {"device_keys": await e2ee.stores.device_keys.get_device_keys(
        {user_id: [c.device_id for c in changes]}, include_display_names=False)}
    await add_cross_signing_to_federation_query(e2ee, response)
    devices = response["device_keys"].get(user_id, {})
    await publish_device_updates(e2ee, user_id, [
        DeviceUpdate(DeviceListChange(c.device_id, c.stream_id, c.prev_stream_id),
                     devices.get(c.device_id))
        for c in changes if c.device_id in devices])


def _matches(obj: JsonDict, stored: JsonDict) -> None:
    if _unsigned_part(obj) != _unsigned_part(stored):
        raise SignatureFailure("M_UNKNOWN", "The signed object does not match the stored key")


def _check_own_device(user_id: str, own: dict[str, JsonDict], devices: dict[str, JsonDict],
                      device_id: str, obj: JsonDict) -> Signature:
    """The self-signing key's signature over one of the user's devices."""
    stored = devices.get(device_id)
    if stored is None:
        raise SignatureFailure("M_NOT_FOUND", f"No keys of device {device_id}")
    _matches(obj, stored)
    ssk_id, signature = _signed_by_own_key(user_id, own, SELF_SIGNING, "self-signing", obj)
    return Signature(user_id, ssk_id, user_id, device_id, signature)


def _signed_by_own_key(user_id: str, own: dict[str, JsonDict], usage: str, label: str,
                       obj: JsonDict) -> tuple[str, str]:
    """(key ID, signature) of the user's ``usage`` key over ``obj``; M_INVALID_SIGNATURE when
    that key is missing or did not sign it."""
    key = own.get(usage)
    if key is None:
        raise SignatureFailure("M_INVALID_SIGNATURE", f"No {label} key is uploaded")
    key_id = key_id_of(key)
    if not check_signed_by(obj, user_id, key_id, public_key_of(key)):
        raise SignatureFailure("M_INVALID_SIGNATURE",
                               f"Missing or invalid signature by the {label} key")
    return key_id, obj["signatures"][user_id][key_id]


async def _check_own_master(e2ee: E2ee, user_id: str, own: dict[str, JsonDict], obj: JsonDict
                            ) -> list[Signature]:
    """Signatures of the user's devices over their own master key."""
    master = own[MASTER]
    _matches(obj, master)
    master_id = key_id_of(master)
    candidates = {key_id: sig for key_id, sig in signatures_by(obj, user_id).items()
                  if key_id != master_id}
    if not candidates:
        raise SignatureFailure("M_INVALID_SIGNATURE", "No signature by a device of the user")
    device_ids = [key_id.partition(":")[2] for key_id in candidates]
    devices = (await e2ee.stores.device_keys.get_device_keys(
        {user_id: device_ids}, include_display_names=False)).get(user_id, {})
    found: list[Signature] = []
    for key_id, signature in candidates.items():
        algorithm, _, device_id = key_id.partition(":")
        public = devices.get(device_id, {}).get("keys", {}).get(key_id)
        if algorithm != "ed25519" or not isinstance(public, str):
            raise SignatureFailure("M_INVALID_SIGNATURE", f"Unknown signing device {key_id}")
        if not check_signed_by(obj, user_id, key_id, public):
            raise SignatureFailure("M_INVALID_SIGNATURE", f"Invalid signature by {key_id}")
        found.append(Signature(user_id, key_id, user_id, public_key_of(master), signature))
    return found


async def _master_key_of(e2ee: E2ee, user_id: str, known: dict[str, dict[str, JsonDict]]
                         ) -> JsonDict | None:
    """A user's master key: stored, else (a remote user) from their server, then kept."""
    master = known.get(user_id, {}).get(MASTER)
    if master is not None or e2ee.is_mine(user_id):
        return master
    client = e2ee.e2ee_federation.client
    if client is None:
        return None
    try:
        answer = await client.post_json(server_name_of(user_id), FEDERATION_QUERY_PATH,
                                        {"device_keys": {user_id: []}}, timeout=10)
    except Exception as e:  # unreachable or refusing: the key stays unknown
        logger.info("fetching the master key of %s failed: %s", user_id, e)
        return None
    remote = answer.get("master_keys", {}).get(user_id) if isinstance(answer, dict) else None
    if not isinstance(remote, dict):
        return None
    ssk = answer.get("self_signing_keys", {}).get(user_id) \
        if isinstance(answer.get("self_signing_keys"), dict) else None
    await store_remote_cross_signing_keys(e2ee, user_id, remote, ssk)
    stored = await e2ee.stores.cross_signing.get_cross_signing_keys([user_id], [MASTER])
    known.setdefault(user_id, {}).update(stored.get(user_id, {}))
    return known[user_id].get(MASTER)


def _check_other_master(user_id: str, own: dict[str, JsonDict], target_user: str,
                        master: JsonDict | None, key_id: str, obj: JsonDict) -> Signature:
    """The user-signing key's signature over another user's master key."""
    if master is None or public_key_of(master) != key_id:
        raise SignatureFailure("M_NOT_FOUND", f"No master key {key_id} of {target_user}")
    _matches(obj, master)
    usk_id, signature = _signed_by_own_key(user_id, own, USER_SIGNING, "user-signing", obj)
    return Signature(user_id, usk_id, target_user, key_id, signature)


# -- reads for /keys/query ------------------------------------------------------------------------
async def add_cross_signing_to_query(e2ee: E2ee, requester_user_id: str, response: JsonDict,
                                     user_ids: Iterable[str] = ()) -> None:
    """Complete a /keys/query answer for the queried ``user_ids`` (and every user already in
    its ``device_keys``, ``master_keys`` or ``self_signing_keys``).

    Adds ``master_keys`` and ``self_signing_keys`` of those users whose keys we hold,
    ``user_signing_keys`` only for the requester's own user, and merges the stored signatures
    the requester may see into those master keys and into ``device_keys``.  Entries already in
    the answer (a remote server's reply) are kept.
    """
    await _add_cross_signing(e2ee, response, requester_user_id, user_ids)


async def add_cross_signing_to_federation_query(e2ee: E2ee, response: JsonDict,
                                                user_ids: Iterable[str] = ()) -> None:
    """Like :func:`add_cross_signing_to_query` for a federation /user/keys/query answer about
    local users: no user-signing keys, only signatures visible to everyone."""
    await _add_cross_signing(e2ee, response, None, user_ids)


async def _add_cross_signing(e2ee: E2ee, response: JsonDict, viewer: str | None,
                             user_ids: Iterable[str]) -> None:
    device_keys: dict[str, dict[str, JsonDict]] = response.setdefault("device_keys", {})
    users = list(dict.fromkeys([*user_ids, *device_keys, *response.get("master_keys", {}),
                                *response.get("self_signing_keys", {})]))
    usages = [MASTER, SELF_SIGNING] + ([USER_SIGNING] if viewer in users else [])
    for usage in usages:
        response.setdefault(QUERY_FIELDS[usage], {})
    if not users:
        return
    stored = await e2ee.stores.cross_signing.get_cross_signing_keys(users, usages)
    for user_id, by_usage in stored.items():
        for usage, key in by_usage.items():
            if usage == USER_SIGNING and user_id != viewer:
                continue
            response[QUERY_FIELDS[usage]].setdefault(user_id, key)
    masters: dict[str, JsonDict] = response[QUERY_FIELDS[MASTER]]
    targets: dict[str, list[str]] = {}
    for user_id in users:
        wanted = list(device_keys.get(user_id) or {})
        master_public = _master_public_key(masters.get(user_id))
        if master_public is not None:
            wanted.append(master_public)
        targets[user_id] = wanted
    signatures = await e2ee.stores.cross_signing.get_signatures_for(targets, viewer=viewer)
    for user_id, by_key in signatures.items():
        master_public = _master_public_key(masters.get(user_id))
        for key_id, extra in by_key.items():
            device = (device_keys.get(user_id) or {}).get(key_id)
            if isinstance(device, dict):
                device_keys[user_id][key_id] = _with_signatures(device, extra)
            elif key_id == master_public:
                masters[user_id] = _with_signatures(masters[user_id], extra)


def _master_public_key(master: Any) -> str | None:
    """The public key of a master key object of an answer (None if it has no usable key)."""
    if not isinstance(master, dict) or not isinstance(master.get("keys"), dict) \
            or len(master["keys"]) != 1:
        return None
    key_id = next(iter(master["keys"]))
    return key_id.partition(":")[2] if isinstance(key_id, str) else None


async def public_keys_with_signatures(e2ee: E2ee, user_id: str) -> dict[str, JsonDict]:
    """The user's master and self-signing keys as other servers see them (the master key with
    the signatures of the user's devices merged in)."""
    response: JsonDict = {}
    await add_cross_signing_to_federation_query(e2ee, response, [user_id])
    out: dict[str, JsonDict] = {}
    for usage in (MASTER, SELF_SIGNING):
        key = response[QUERY_FIELDS[usage]].get(user_id)
        if key is not None:
            out[FIELDS[usage]] = key
    return out


# -- federation -----------------------------------------------------------------------------------
async def _room_peers(e2ee: E2ee, user_id: str) -> tuple[set[str], set[str]]:
    """Local users and other servers that share a joined room with ``user_id``."""
    local: set[str] = set()
    servers: set[str] = set()
    for room_id in await e2ee.rooms.user_rooms.joined_rooms(user_id):
        room = await e2ee.rooms.registry.get(room_id)
        if room is None:
            continue
        for member in room.members_with("join"):
            if e2ee.is_mine(member):
                local.add(member)
            else:
                servers.add(server_name_of(member))
    local.discard(user_id)
    servers.discard(e2ee.server_name)
    return local, servers


async def _send_signing_key_update(e2ee: E2ee, user_id: str, servers: Iterable[str]) -> None:
    sender = e2ee.e2ee_federation.sender
    if sender is None:
        return
    content = {"user_id": user_id, **await public_keys_with_signatures(e2ee, user_id)}
    for server in sorted(servers):
        await sender.enqueue_edu(server, SIGNING_KEY_UPDATE, content, persistent=True,
                                 key=user_id)


async def store_remote_cross_signing_keys(e2ee: E2ee, user_id: str, master_key: Any,
                                          self_signing_key: Any, *,
                                          local_peers: set[str] | None = None) -> bool:
    """Cache a remote user's master and/or self-signing key after checking them (shapes,
    owner, and the self-signing key's signature by the given or stored master key).

    Stores and wakes the local users sharing a room with ``user_id`` only when something
    changed; returns whether anything was stored.  Invalid keys are refused as a whole.
    """
    new: dict[str, JsonDict] = {}
    try:
        if master_key is not None:
            new[MASTER] = parse_cross_signing_key(master_key, user_id, MASTER, "master_key")
        if self_signing_key is not None:
            new[SELF_SIGNING] = parse_cross_signing_key(
                self_signing_key, user_id, SELF_SIGNING, "self_signing_key")
    except DomainError as e:
        logger.info("cross-signing keys of %s refused: %s", user_id, e.message)
        return False
    store = e2ee.stores.cross_signing
    current = (await store.get_cross_signing_keys([user_id])).get(user_id, {})
    if SELF_SIGNING in new:
        master = new.get(MASTER) or current.get(MASTER)
        if master is None or not signed_by_master(new[SELF_SIGNING], master):
            logger.info("self-signing key of %s is not signed by its master key", user_id)
            return False
    changed = {usage: key for usage, key in new.items() if current.get(usage) != key}
    if not changed:
        return False
    if local_peers is None:
        local_peers, _ = await _room_peers(e2ee, user_id)

    def write(stream_id: int) -> Any:
        return store.set_cross_signing_keys(user_id, changed, stream_id)

    await e2ee.write_with_stream_id(write, users=local_peers)
    # The device-key cache holds the keys the server answered with before: ask it again.
    await e2ee.stores.device_keys.forget_remote_cache([user_id])
    return True


async def on_signing_key_update(e2ee: E2ee, origin: str, content: JsonDict) -> None:
    """An inbound ``m.signing_key_update`` EDU: stored when the user belongs to ``origin`` and
    shares a room with a local user."""
    user_id = content.get("user_id")
    if not isinstance(user_id, str) or server_name_of(user_id) != origin:
        return
    if e2ee.is_mine(user_id):
        return
    local_peers, _ = await _room_peers(e2ee, user_id)
    if not local_peers:
        return
    await store_remote_cross_signing_keys(e2ee, user_id, content.get("master_key"),
                                          content.get("self_signing_key"),
                                          local_peers=local_peers)
