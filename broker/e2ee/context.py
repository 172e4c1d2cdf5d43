"""What the end-to-end encryption code reads: the stores, stream and notifier it writes and
wakes through, the rooms it looks members up in, and the federation parts it sends and asks
through.  The node builds one :class:`E2eeContext`; :class:`E2ee` is its shape (a node fits it
too, for callers that still hand the node)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from twisted.internet import defer

    from broker.clock import Clock
    from broker.e2ee.device_lists import E2eeFederation
    from broker.e2ee.keys import KeyCountCache
    from broker.e2ee.to_device import ToDevice
    from broker.notifier import Notifier
    from broker.rooms.service import Rooms
    from broker.streams import StreamWriter
    from storage.cross_signing import CrossSigningStore
    from storage.device_keys import DeviceKeyStore
    from storage.stream import StreamIdGenerator
    from storage.users import UserStore


class E2eeStores(Protocol):
    @property
    def device_keys(self) -> DeviceKeyStore: ...
    @property
    def cross_signing(self) -> CrossSigningStore: ...
    @property
    def users(self) -> UserStore: ...


class E2ee(Protocol):
    @property
    def server_name(self) -> str: ...
    @property
    def stores(self) -> E2eeStores: ...
    @property
    def stream(self) -> StreamIdGenerator | None: ...
    @property
    def notifier(self) -> Notifier: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def rooms(self) -> Rooms: ...
    @property
    def key_counts(self) -> KeyCountCache: ...
    @property
    def e2ee_federation(self) -> E2eeFederation: ...
    @property
    def to_device(self) -> ToDevice: ...

    def is_mine(self, matrix_id: str) -> bool: ...

    async def write_with_stream_id(
        self, write: Callable[[int], defer.Deferred[Any]], *, users: Iterable[str] = (),
        rooms: Iterable[str] = ()) -> int: ...


@dataclass(frozen=True)
class E2eeStoreSet:
    device_keys: DeviceKeyStore
    cross_signing: CrossSigningStore
    users: UserStore


@dataclass(frozen=True)
class E2eeContext:
    server_name: str
    stores: E2eeStoreSet
    stream: StreamIdGenerator
    streams: StreamWriter
    notifier: Notifier
    clock: Clock
    rooms: Rooms
    key_counts: KeyCountCache
    e2ee_federation: E2eeFederation
    to_device: ToDevice

    def is_mine(self, matrix_id: str) -> bool:
        return matrix_id.split(":", 1)[-1] == self.server_name

    async def write_with_stream_id(
        self, write: Callable[[int], defer.Deferred[Any]], *, users: Iterable[str] = (),
        rooms: Iterable[str] = ()) -> int:
        return await self.streams.write(write, users=users, rooms=rooms)
