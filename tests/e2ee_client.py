"""A minimal end-to-end encryption capable Matrix client over raw HTTP, for acceptance tests.

It does what Element does, with vodozemac (the Rust Olm/Megolm implementation) for every
cryptographic operation and nothing but the Client-Server API on the wire:

- one Olm account per device: signed device keys, signed one-time keys and a fallback key
  uploaded through ``/keys/upload``;
- ``/keys/query`` for other users' devices (a device whose self-signature does not verify is
  ignored), ``/keys/claim`` for a signed one-time key, an outbound Olm session from it;
- ``m.room_key`` (a Megolm session) sent to each device as an Olm-encrypted to-device message
  (``PUT /sendToDevice/m.room.encrypted/{txnId}``); received ones decrypted from /sync,
  creating the inbound Olm session from the pre-key message;
- room messages encrypted with the outbound Megolm session as ``m.room.encrypted`` events, and
  received ones decrypted with the imported inbound sessions;
- server-side key backup with ``m.megolm_backup.v1.curve25519-aes-sha2``.

The client keeps all secrets in memory; the server only ever sees public keys, signatures and
ciphertext.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import vodozemac
from canonicaljson import encode_canonical_json

from tests.node_harness import Client

V3 = "/_matrix/client/v3"
OLM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM = "m.megolm.v1.aes-sha2"
BACKUP = "m.megolm_backup.v1.curve25519-aes-sha2"
OTK_ALGORITHM = "signed_curve25519"

JsonDict = dict[str, Any]


def b64encode(data: bytes) -> str:
    """Unpadded standard base64, as Matrix uses for keys, signatures and ciphertext."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def canonical_signable(obj: JsonDict) -> bytes:
    """The bytes that a Matrix signature covers: canonical JSON without signatures/unsigned."""
    return encode_canonical_json(
        {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")})


def verify_json_signature(obj: JsonDict, user_id: str, key_id: str, ed25519_key: str) -> bool:
    """Whether ``obj`` carries a valid signature by ``user_id`` with ``key_id``."""
    signature = obj.get("signatures", {}).get(user_id, {}).get(key_id)
    if not isinstance(signature, str):
        return False
    try:
        vodozemac.Ed25519PublicKey.from_base64(ed25519_key).verify_signature(
            canonical_signable(obj), vodozemac.Ed25519Signature.from_base64(signature))
    except (vodozemac.SignatureException, vodozemac.KeyException, vodozemac.DecodeException,
            ValueError):
        return False
    return True


class CryptoError(AssertionError):
    """Something a real client would refuse: a bad signature, a message it cannot decrypt."""


@dataclass
class Device:
    """Another device's verified identity keys."""

    user_id: str
    device_id: str
    curve25519: str
    ed25519: str


@dataclass
class InboundSession:
    """An imported Megolm session and what we know of where it came from."""

    room_id: str
    sender_key: str
    sender_ed25519: str
    session: vodozemac.InboundGroupSession


@dataclass
class OutboundSession:
    session: vodozemac.GroupSession
    shared_with: set[tuple[str, str]] = field(default_factory=set)
    # Every session key sent in an m.room_key (secrets the server must never see in clear).
    sent_keys: list[str] = field(default_factory=list)


class E2EEClient:
    """One logged-in device with its own Olm account."""

    def __init__(self, http: Client) -> None:
        self.http = http
        self.user_id = http.user_id
        self.device_id = http.device_id
        self.account = vodozemac.Account()
        self.devices: dict[str, dict[str, Device]] = {}
        self.rejected_devices: list[tuple[str, str]] = []
        self.olm_sessions: dict[str, list[vodozemac.Session]] = {}
        self.outbound: dict[str, OutboundSession] = {}
        self.inbound: dict[tuple[str, str], InboundSession] = {}
        self.to_device_events: list[JsonDict] = []
        self.timeline: dict[str, list[JsonDict]] = {}
        self.invites: set[str] = set()
        self.since: str | None = None

    # -- identity ---------------------------------------------------------------------------------
    @property
    def curve25519(self) -> str:
        return self.account.curve25519_key.to_base64()

    @property
    def ed25519(self) -> str:
        return self.account.ed25519_key.to_base64()

    def sign(self, obj: JsonDict) -> JsonDict:
        """``obj`` with this device's signature added."""
        signature = self.account.sign(canonical_signable(obj)).to_base64()
        signed = dict(obj)
        signed["signatures"] = {
            **obj.get("signatures", {}),
            self.user_id: {**obj.get("signatures", {}).get(self.user_id, {}),
                           f"ed25519:{self.device_id}": signature}}
        return signed

    def device_keys(self) -> JsonDict:
        return self.sign({
            "user_id": self.user_id, "device_id": self.device_id,
            "algorithms": [OLM, MEGOLM],
            "keys": {f"curve25519:{self.device_id}": self.curve25519,
                     f"ed25519:{self.device_id}": self.ed25519}})

    def upload_keys(self, one_time_keys: int = 5, fallback: bool = True) -> JsonDict:
        """Upload the signed device keys, ``one_time_keys`` signed one-time keys and a signed
        fallback key; returns the server's one-time key counts."""
        self.account.generate_one_time_keys(one_time_keys)
        body: JsonDict = {
            "device_keys": self.device_keys(),
            "one_time_keys": self._signed_keys(self.account.one_time_keys)}
        if fallback:
            # vodozemac's type stubs (0.10) leave out the fallback key methods it has.
            self.account.generate_fallback_key()  # type: ignore[attr-defined]
            body["fallback_keys"] = self._signed_keys(
                self.account.fallback_key, fallback=True)  # type: ignore[attr-defined]
        answer = self.http.post(f"{V3}/keys/upload", body)
        if self.http.status != 200:
            raise AssertionError(f"/keys/upload: {self.http.status} {answer}")
        self.account.mark_keys_as_published()
        return dict(answer["one_time_key_counts"])

    def _signed_keys(self, keys: dict[str, vodozemac.Curve25519PublicKey],
                     fallback: bool = False) -> JsonDict:
        signed = {}
        for key_id, key in keys.items():
            obj: JsonDict = {"key": key.to_base64()}
            if fallback:
                obj["fallback"] = True
            signed[f"{OTK_ALGORITHM}:{key_id}"] = self.sign(obj)
        return signed

    # -- other devices ----------------------------------------------------------------------------
    def query_keys(self, *user_ids: str) -> JsonDict:
        """``/keys/query``; devices whose keys are self-signed are remembered."""
        answer = self.http.post(f"{V3}/keys/query", {"device_keys": {u: [] for u in user_ids}})
        if self.http.status != 200:
            raise AssertionError(f"/keys/query: {self.http.status} {answer}")
        for user_id, by_device in answer.get("device_keys", {}).items():
            for device_id, keys in by_device.items():
                device = self._verified_device(user_id, device_id, keys)
                if device is None:
                    self.rejected_devices.append((user_id, device_id))
                else:
                    self.devices.setdefault(user_id, {})[device_id] = device
        return dict(answer)

    @staticmethod
    def _verified_device(user_id: str, device_id: str, keys: JsonDict) -> Device | None:
        if keys.get("user_id") != user_id or keys.get("device_id") != device_id:
            return None
        public = keys.get("keys", {})
        ed25519 = public.get(f"ed25519:{device_id}")
        curve25519 = public.get(f"curve25519:{device_id}")
        if not isinstance(ed25519, str) or not isinstance(curve25519, str):
            return None
        if not verify_json_signature(keys, user_id, f"ed25519:{device_id}", ed25519):
            return None
        return Device(user_id, device_id, curve25519, ed25519)

    def device(self, user_id: str, device_id: str) -> Device:
        if device_id not in self.devices.get(user_id, {}):
            self.query_keys(user_id)
        try:
            return self.devices[user_id][device_id]
        except KeyError:
            raise CryptoError(f"no verified keys for {user_id} {device_id}") from None

    def claim_one_time_key(self, device: Device) -> str:
        """Claim a signed one-time key of ``device`` (verifying its signature)."""
        answer = self.http.post(f"{V3}/keys/claim", {
            "one_time_keys": {device.user_id: {device.device_id: OTK_ALGORITHM}}})
        if self.http.status != 200:
            raise AssertionError(f"/keys/claim: {self.http.status} {answer}")
        keys = answer.get("one_time_keys", {}).get(device.user_id, {}).get(device.device_id, {})
        for key_id, key in keys.items():
            if key_id.startswith(f"{OTK_ALGORITHM}:") and isinstance(key, dict) \
                    and verify_json_signature(key, device.user_id, f"ed25519:{device.device_id}",
                                              device.ed25519):
                return str(key["key"])
        raise CryptoError(f"no signed one-time key for {device.device_id}: {answer}")

    # -- Olm --------------------------------------------------------------------------------------
    def olm_session(self, device: Device) -> vodozemac.Session:
        """An existing Olm session with ``device``, or a new one from a claimed one-time key."""
        sessions = self.olm_sessions.get(device.curve25519)
        if sessions:
            return sessions[-1]
        one_time_key = self.claim_one_time_key(device)
        session = self.account.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_base64(device.curve25519),
            vodozemac.Curve25519PublicKey.from_base64(one_time_key))
        self.olm_sessions[device.curve25519] = [session]
        return session

    def olm_encrypt(self, device: Device, event_type: str, content: JsonDict) -> JsonDict:
        """The ``m.room.encrypted`` to-device content carrying ``event_type``/``content``."""
        payload = {
            "type": event_type, "content": content,
            "sender": self.user_id, "sender_device": self.device_id,
            "keys": {"ed25519": self.ed25519},
            "recipient": device.user_id, "recipient_keys": {"ed25519": device.ed25519}}
        message_type, ciphertext = self.olm_session(device).encrypt(
            json.dumps(payload).encode()).to_parts()
        return {"algorithm": OLM, "sender_key": self.curve25519,
                "ciphertext": {device.curve25519: {"type": message_type,
                                                   "body": b64encode(ciphertext)}}}

    def send_to_device_encrypted(self, recipients: list[Device], event_type: str,
                                 content: JsonDict) -> None:
        messages: dict[str, dict[str, JsonDict]] = {}
        for device in recipients:
            messages.setdefault(device.user_id, {})[device.device_id] = self.olm_encrypt(
                device, event_type, content)
        answer = self.http.put(f"{V3}/sendToDevice/m.room.encrypted/{uuid.uuid4().hex}",
                               {"messages": messages})
        if self.http.status != 200:
            raise AssertionError(f"/sendToDevice: {self.http.status} {answer}")

    def olm_decrypt(self, event: JsonDict) -> JsonDict:
        """The plaintext payload of an Olm-encrypted to-device event (checked like Element:
        addressed to this device, sent by the device that holds the claimed keys)."""
        content = event["content"]
        if content.get("algorithm") != OLM:
            raise CryptoError(f"unsupported to-device algorithm: {content.get('algorithm')}")
        sender_key = content["sender_key"]
        mine = content["ciphertext"].get(self.curve25519)
        if mine is None:
            raise CryptoError("the to-device message was not encrypted for this device")
        message = vodozemac.AnyOlmMessage.from_parts(int(mine["type"]), b64decode(mine["body"]))
        plaintext = self._decrypt_olm_message(sender_key, message)
        payload: JsonDict = json.loads(plaintext)
        if payload.get("recipient") != self.user_id \
                or payload.get("recipient_keys", {}).get("ed25519") != self.ed25519:
            raise CryptoError("the to-device payload is addressed to somebody else")
        if payload.get("sender") != event.get("sender"):
            raise CryptoError("the to-device payload names another sender")
        sender = self.device(event["sender"], str(payload.get("sender_device")))
        if sender.curve25519 != sender_key \
                or payload.get("keys", {}).get("ed25519") != sender.ed25519:
            raise CryptoError("the to-device payload's keys are not the sender device's")
        return payload

    def _decrypt_olm_message(self, sender_key: str, message: vodozemac.AnyOlmMessage) -> bytes:
        sessions = self.olm_sessions.setdefault(sender_key, [])
        pre_key = message.to_pre_key()
        for session in sessions:
            if pre_key is not None and not session.session_matches(pre_key):
                continue
            try:
                return session.decrypt(message)
            except vodozemac.OlmDecryptionException:
                continue
        if pre_key is None:
            raise CryptoError("no Olm session decrypts the message")
        session, plaintext = self.account.create_inbound_session(
            vodozemac.Curve25519PublicKey.from_base64(sender_key), pre_key)
        sessions.append(session)
        return plaintext

    # -- Megolm -----------------------------------------------------------------------------------
    def outbound_session(self, room_id: str) -> OutboundSession:
        if room_id not in self.outbound:
            outbound = OutboundSession(vodozemac.GroupSession())
            self.outbound[room_id] = outbound
            # Our own inbound copy, so that we read our own messages (and can back them up).
            self._import_room_key(room_id, self.curve25519, self.ed25519,
                                  outbound.session.session_key.to_base64())
        return self.outbound[room_id]

    def share_room_key(self, room_id: str, user_ids: list[str]) -> list[Device]:
        """Send the room's Megolm session to every verified device of ``user_ids`` (other than
        this one) that does not have it yet; returns the devices it was sent to."""
        outbound = self.outbound_session(room_id)
        self.query_keys(*user_ids)
        recipients = [
            device for user_id in user_ids for device in self.devices.get(user_id, {}).values()
            if (device.user_id, device.device_id) not in outbound.shared_with
            and device.device_id != self.device_id]
        if recipients:
            session_key = outbound.session.session_key.to_base64()
            self.send_to_device_encrypted(recipients, "m.room_key", {
                "algorithm": MEGOLM, "room_id": room_id,
                "session_id": outbound.session.session_id, "session_key": session_key})
            outbound.sent_keys.append(session_key)
            outbound.shared_with.update((d.user_id, d.device_id) for d in recipients)
        return recipients

    def send_encrypted(self, room_id: str, body: str, event_type: str = "m.room.message"
                       ) -> str:
        """Send ``body`` as an ``m.room.encrypted`` event; returns its event ID."""
        outbound = self.outbound_session(room_id)
        plaintext = {"type": event_type, "room_id": room_id,
                     "content": {"msgtype": "m.text", "body": body}}
        ciphertext = outbound.session.encrypt(json.dumps(plaintext).encode()).to_base64()
        answer = self.http.put(
            f"{V3}/rooms/{quote(room_id)}/send/m.room.encrypted/{uuid.uuid4().hex}",
            {"algorithm": MEGOLM, "ciphertext": ciphertext,
             "session_id": outbound.session.session_id,
             "sender_key": self.curve25519, "device_id": self.device_id})
        if self.http.status != 200:
            raise AssertionError(f"send m.room.encrypted: {self.http.status} {answer}")
        return str(answer["event_id"])

    def _import_room_key(self, room_id: str, sender_key: str, sender_ed25519: str,
                         session_key: str, exported: bool = False) -> InboundSession:
        session = (vodozemac.InboundGroupSession.import_session(
            vodozemac.ExportedSessionKey(session_key)) if exported
            else vodozemac.InboundGroupSession(vodozemac.SessionKey(session_key)))
        inbound = InboundSession(room_id, sender_key, sender_ed25519, session)
        self.inbound[(room_id, session.session_id)] = inbound
        return inbound

    def decrypt_room_event(self, event: JsonDict, room_id: str) -> JsonDict:
        """The plaintext ``{"type", "content", "room_id"}`` of an ``m.room.encrypted`` event."""
        content = event["content"]
        if event.get("type") != "m.room.encrypted" or content.get("algorithm") != MEGOLM:
            raise CryptoError(f"not a Megolm event: {event}")
        inbound = self.inbound.get((room_id, content["session_id"]))
        if inbound is None:
            raise CryptoError(f"no room key for session {content['session_id']}")
        try:
            decrypted = inbound.session.decrypt(
                vodozemac.MegolmMessage.from_base64(content["ciphertext"]))
        except vodozemac.MegolmDecryptionException as e:
            raise CryptoError(f"cannot decrypt {event.get('event_id')}: {e}") from e
        plaintext: JsonDict = json.loads(decrypted.plaintext)
        if plaintext.get("room_id") != room_id:
            raise CryptoError("the decrypted event belongs to another room")
        return plaintext

    def decrypted_bodies(self, room_id: str, events: list[JsonDict]) -> list[str]:
        return [self.decrypt_room_event(e, room_id)["content"]["body"]
                for e in events if e.get("type") == "m.room.encrypted"]

    # -- sync -------------------------------------------------------------------------------------
    def sync(self, timeout_ms: int = 1000) -> JsonDict:
        """One /sync: to-device events are decrypted (room keys imported), timeline events
        collected per room."""
        params: dict[str, Any] = {"timeout": timeout_ms}
        if self.since:
            params["since"] = self.since
        body = self.http.get(f"{V3}/sync", params=params, timeout=timeout_ms / 1000 + 30)
        if self.http.status != 200:
            raise AssertionError(f"/sync: {self.http.status} {body}")
        self.since = body["next_batch"]
        for event in body.get("to_device", {}).get("events", []):
            self._receive_to_device(event)
        self.invites.update(body.get("rooms", {}).get("invite", {}))
        for room_id, room in body.get("rooms", {}).get("join", {}).items():
            self.timeline.setdefault(room_id, []).extend(room.get("timeline", {}).get("events",
                                                                                      []))
        return dict(body)

    def _receive_to_device(self, event: JsonDict) -> None:
        if event.get("type") != "m.room.encrypted":
            self.to_device_events.append(event)
            return
        payload = self.olm_decrypt(event)
        self.to_device_events.append({"sender": event["sender"], "type": payload["type"],
                                      "content": payload["content"], "encrypted": True})
        if payload["type"] == "m.room_key" and payload["content"].get("algorithm") == MEGOLM:
            key = payload["content"]
            self._import_room_key(key["room_id"], event["content"]["sender_key"],
                                  payload["keys"]["ed25519"], key["session_key"])

    def sync_until(self, predicate: Any, timeout: float = 20.0) -> None:
        """Sync until ``predicate(self)`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.user_id}/{self.device_id}: condition not met after {timeout}s; "
                    f"to-device {self.to_device_events}, timeline {self.timeline}")
            self.sync()

    def has_room_key(self, room_id: str, session_id: str) -> bool:
        return (room_id, session_id) in self.inbound

    def room_events_of_type(self, room_id: str, event_type: str) -> list[JsonDict]:
        return [e for e in self.timeline.get(room_id, []) if e.get("type") == event_type]

    def history(self, room_id: str, limit: int = 100) -> list[JsonDict]:
        """The room's events, oldest first, from ``/messages`` (backwards from now)."""
        answer = self.http.get(f"{V3}/rooms/{quote(room_id)}/messages",
                               params={"dir": "b", "limit": limit})
        if self.http.status != 200:
            raise AssertionError(f"/messages: {self.http.status} {answer}")
        return list(reversed(answer["chunk"]))

    # -- server-side key backup -------------------------------------------------------------------
    def create_backup(self, recovery: vodozemac.PkDecryption) -> str:
        """A new backup version encrypting to ``recovery``'s public key, signed by this device."""
        auth_data = self.sign({"public_key": recovery.public_key.to_base64()})
        answer = self.http.post(f"{V3}/room_keys/version",
                                {"algorithm": BACKUP, "auth_data": auth_data})
        if self.http.status != 200:
            raise AssertionError(f"create backup: {self.http.status} {answer}")
        return str(answer["version"])

    def backup_room_keys(self, version: str) -> JsonDict:
        """Encrypt every inbound Megolm session to the backup's key and upload them."""
        info = self.http.get(f"{V3}/room_keys/version/{quote(version)}")
        if self.http.status != 200:
            raise AssertionError(f"backup version: {self.http.status} {info}")
        encryption = vodozemac.PkEncryption.from_key(
            vodozemac.Curve25519PublicKey.from_base64(info["auth_data"]["public_key"]))
        rooms: dict[str, JsonDict] = {}
        for (room_id, session_id), inbound in self.inbound.items():
            first_index = inbound.session.first_known_index
            exported = inbound.session.export_at(first_index)
            assert exported is not None
            session_data = {
                "algorithm": MEGOLM, "forwarding_curve25519_key_chain": [],
                "sender_key": inbound.sender_key,
                "sender_claimed_keys": {"ed25519": inbound.sender_ed25519},
                "session_key": exported.to_base64()}
            message = encryption.encrypt(json.dumps(session_data).encode())
            rooms.setdefault(room_id, {"sessions": {}})["sessions"][session_id] = {
                "first_message_index": first_index, "forwarded_count": 0, "is_verified": False,
                "session_data": {"ephemeral": b64encode(message.ephemeral_key),
                                 "ciphertext": b64encode(message.ciphertext),
                                 "mac": b64encode(message.mac)}}
        answer = self.http.put(f"{V3}/room_keys/keys", {"rooms": rooms},
                               params={"version": version})
        if self.http.status != 200:
            raise AssertionError(f"upload backup keys: {self.http.status} {answer}")
        return dict(answer)

    def restore_backup(self, recovery_key: bytes) -> int:
        """Download the current backup, check that it is ours (its public key is the recovery
        key's), decrypt and import every session; returns how many were imported."""
        decryption = vodozemac.PkDecryption.from_key(
            vodozemac.Curve25519SecretKey.from_bytes(recovery_key))
        info = self.http.get(f"{V3}/room_keys/version")
        if self.http.status != 200:
            raise AssertionError(f"current backup: {self.http.status} {info}")
        if info["algorithm"] != BACKUP \
                or info["auth_data"]["public_key"] != decryption.public_key.to_base64():
            raise CryptoError(f"the backup is not encrypted to our recovery key: {info}")
        answer = self.http.get(f"{V3}/room_keys/keys", params={"version": info["version"]})
        if self.http.status != 200:
            raise AssertionError(f"download backup keys: {self.http.status} {answer}")
        imported = 0
        for room_id, room in answer["rooms"].items():
            for session_id, key_data in room["sessions"].items():
                data = key_data["session_data"]
                plaintext = decryption.decrypt(vodozemac.Message(
                    b64decode(data["ciphertext"]), b64decode(data["mac"]),
                    b64decode(data["ephemeral"])))
                session = json.loads(plaintext)
                inbound = self._import_room_key(
                    room_id, session["sender_key"], session["sender_claimed_keys"]["ed25519"],
                    session["session_key"], exported=True)
                if inbound.session.session_id != session_id:
                    raise CryptoError("a backed-up session is filed under another session ID")
                imported += 1
        return imported
