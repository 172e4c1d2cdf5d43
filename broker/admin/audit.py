"""The audit log service: recording admin actions and refusals, signing the chain's head, and
verifying the chain.

An action is recorded with :meth:`AuditLog.recording`: the service fills in what the action
concerns, hands :meth:`Recording.draft` to the store write that makes the change (the entry is
appended in that transaction), and a domain error raised inside the block is appended as a
refusal.  Successful reads are not recorded; refused ones are.

Every ``audit.sign_interval_seconds`` (and on shutdown) the head of the chain, if it moved, is
signed with the node's signing key: a removed or changed entry then breaks either the chain or
a signature, and :func:`verify` names the first bad entry.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from signedjson.key import get_verify_key
from signedjson.types import SigningKey
from twisted.internet import defer, task

from broker.admin import permissions
from broker.admin.authority import Authority
from broker.admin.model import Actor
from broker.errors import DomainError
from protocol.signing import sign_json, verify_json_signature, verify_key_id
from storage.audit import AuditDraft, AuditStore, HeadSignature, entry_hash

logger = logging.getLogger(__name__)

PAGE = 1000


@dataclass
class Recording:
    """One action being recorded; the service sets ``organisation`` and ``detail``."""

    actor: Actor
    action: str
    target: str
    ts: int
    organisation: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def draft(self, outcome: str = "ok") -> AuditDraft:
        return AuditDraft(self.ts, self.actor.user_id, self.action, self.target,
                          self.organisation or "", self.actor.client_ip, outcome,
                          dict(self.detail))


class AuditLog:
    def __init__(self, store: AuditStore, clock: Any, signing_key: SigningKey,
                 server_name: str, sign_interval_seconds: float) -> None:
        self.store = store
        self.clock = clock
        self.signing_key = signing_key
        self.server_name = server_name
        self.sign_interval_seconds = sign_interval_seconds
        self._loop: task.LoopingCall | None = None

    @asynccontextmanager
    async def recording(self, actor: Actor, action: str, target: str = ""
                        ) -> AsyncIterator[Recording]:
        """Record the action done in the block; a domain error leaving it is a refusal."""
        entry = Recording(actor, action, target, self.clock.time_ms())
        try:
            yield entry
        except DomainError as e:
            await self.refused(entry, e.errcode, e.message, e.extra)
            raise

    async def refused(self, entry: Recording, errcode: str, message: str,
                      extra: dict[str, Any] | None = None) -> None:
        """Append the refusal; ``extra`` are the error's further fields (``reason``,
        ``retry_after_ms``), recorded with it."""
        entry.detail.update(extra or {})
        entry.detail.update(errcode=errcode, error=message)
        await self.store.append(entry.draft("refused"))

    async def record(self, entry: Recording) -> None:
        """Record an action that writes nothing else (a read that must be on record)."""
        await self.store.append(entry.draft())

    async def refuse(self, actor: Actor, action: str, target: str, errcode: str,
                     message: str) -> None:
        """Record a request refused before it reached a service (a body that is not JSON)."""
        await self.refused(Recording(actor, action, target, self.clock.time_ms()), errcode,
                           message)

    async def entries(self, after: int, limit: int,
                      organisations: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return await self.store.entries(
            after, limit, None if organisations is None else list(organisations))

    # -- signing the head -------------------------------------------------------------------
    async def sign_head(self) -> HeadSignature | None:
        """Sign the chain's head if it moved since the last signature; the new signature."""
        seq, head_hash = await self.store.head()
        if seq == 0 or seq <= await self.store.last_signed_seq():
            return None
        signed = sign_json(_signed_object(self.server_name, seq, head_hash,
                                          self.clock.time_ms()),
                           self.server_name, self.signing_key)
        key_id = verify_key_id(self.signing_key)
        signature = HeadSignature(seq, head_hash, key_id,
                                  signed["signatures"][self.server_name][key_id],
                                  signed["signed_ts"])
        await self.store.add_signature(signature)
        return signature

    async def _sign_quietly(self) -> None:
        try:
            await self.sign_head()
        except Exception:  # the loop must keep running; the next period signs again
            logger.exception("signing the audit log's head failed")

    def start(self, reactor: Any) -> None:
        """Sign periodically, and once more before the node shuts down."""
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self._sign_quietly()))
        self._loop.clock = reactor
        self._loop.start(self.sign_interval_seconds, now=False)
        reactor.addSystemEventTrigger("before", "shutdown", self.stop)

    def stop(self) -> defer.Deferred[None]:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return defer.ensureDeferred(self._sign_quietly())


def _signed_object(server_name: str, seq: int, head_hash: str, signed_ts: int
                   ) -> dict[str, Any]:
    return {"type": "in.gov.broker.audit_head", "server_name": server_name, "seq": seq,
            "hash": head_hash, "signed_ts": signed_ts}


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``bad_seq`` is the first bad entry (None: all good)."""

    entries: int
    signed_up_to: int
    bad_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.bad_seq is None and not self.problem


class _Chain:
    """Walks entries in order, checking each against the one before it."""

    def __init__(self, wanted: set[int]) -> None:
        self.count = 0
        self.last_seq = 0
        self.last_hash = ""
        self.wanted = wanted
        self.hashes: dict[int, str] = {}

    def check(self, entry: dict[str, Any]) -> Verification | None:
        expected = self.last_seq + 1
        seq = entry["seq"]
        if seq != expected:
            return self.bad(expected, f"entry {expected} is missing (the next entry is {seq})")
        if entry["prev_hash"] != self.last_hash:
            return self.bad(seq, f"entry {seq} does not follow entry {seq - 1} (its previous"
                            " hash differs)")
        try:
            digest = entry_hash(entry)
        except Exception:  # a damaged row that does not even encode
            digest = ""
        if digest != entry["hash"]:
            return self.bad(seq, f"entry {seq} was changed (its content does not match its hash)")
        self.count, self.last_seq, self.last_hash = self.count + 1, seq, entry["hash"]
        if seq in self.wanted:
            self.hashes[seq] = entry["hash"]
        return None

    def bad(self, seq: int, problem: str) -> Verification:
        return Verification(self.count, 0, seq, problem)


async def verify(store: AuditStore, server_name: str, keys: Iterable[SigningKey],
                 old_keys: dict[str, Any] | None = None) -> Verification:
    """Check the whole chain and every signature of its head (made with one of ``keys``, or
    one of the retired ``old_keys``: key ID -> verify key); the first bad entry."""
    verify_keys = {**(old_keys or {}), **{verify_key_id(k): get_verify_key(k) for k in keys}}
    signatures = await store.signatures()
    chain = _Chain({s.seq for s in signatures})
    after = 0
    while True:
        page = await store.entries(after, PAGE)
        for entry in page:
            found = chain.check(entry)
            if found is not None:
                return found
        if len(page) < PAGE:
            break
        after = page[-1]["seq"]
    head_seq, _ = await store.head()
    if head_seq > chain.last_seq:
        return chain.bad(chain.last_seq + 1, f"entries {chain.last_seq + 1} to {head_seq} were"
                         " removed (the head of the chain is further)")
    return _check_signatures(chain, signatures, verify_keys, server_name)


def _check_signatures(chain: _Chain, signatures: list[HeadSignature],
                      verify_keys: dict[str, Any], server_name: str) -> Verification:
    for signature in signatures:
        if signature.seq > chain.last_seq:
            return chain.bad(chain.last_seq + 1, f"entries after {chain.last_seq} were removed"
                             f" (the head was signed at entry {signature.seq})")
        key = verify_keys.get(signature.key_id)
        signed = _signed_object(server_name, signature.seq, signature.hash, signature.signed_ts)
        signed["signatures"] = {server_name: {signature.key_id: signature.signature}}
        try:
            if key is None:
                raise ValueError(f"unknown key {signature.key_id}")
            verify_json_signature(signed, server_name, key)
        except Exception as e:
            return Verification(chain.count, 0, signature.seq,
                                f"the signature of the head at entry {signature.seq} is not"
                                f" valid ({e})")
        if chain.hashes.get(signature.seq) != signature.hash:
            return Verification(chain.count, 0, signature.seq,
                                f"entry {signature.seq} differs from the head signed at it"
                                " (entries up to it were rewritten)")
    last_signed = signatures[-1].seq if signatures else 0
    return Verification(chain.count, last_signed)


class AuditReader:
    """Reading the log through the admin API: node-wide readers see every entry, readers
    over organisations the entries concerning their sub-trees."""

    def __init__(self, audit: AuditLog, authority: Authority) -> None:
        self.audit = audit
        self.authority = authority

    async def read(self, actor: Actor, after: int, limit: int) -> list[dict[str, Any]]:
        async with self.audit.recording(actor, permissions.AUDIT_READ):
            tree, grants = await self.authority.tree(), await self.authority.grants(actor)
            roots = permissions.visible_roots(
                permissions.require_some(grants, permissions.AUDIT_READ), tree)
            scope = None if roots is None else [o for root in roots for o in tree.subtree(root)]
            return await self.audit.entries(after, limit, scope)
