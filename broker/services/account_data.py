"""Account data and room tags of a user (global and per room), each change under a stream
position so /sync delivers it."""

from __future__ import annotations

from typing import Any, Protocol

from broker.errors import InvalidInput, MalformedContent, NotFound
from broker.push_rules_defaults import push_rules_content
from broker.streams import StreamWriter
from storage.account_data import GLOBAL, AccountDataStore
from storage.push_rules import PushRuleStore

MAX_TYPE_BYTES = 255
MAX_TAG_BYTES = 255


def check_room_id(room_id: str) -> None:
    """``InvalidInput`` unless ``room_id`` looks like a room ID ('!' sigil)."""
    if len(room_id) < 2 or not room_id.startswith("!"):
        raise InvalidInput(f"{room_id!r} is not a valid room ID.")


def validate_tag(tag: str, body: dict[str, Any]) -> dict[str, Any]:
    """The tag object to store, if the name fits and ``order`` is a number in 0..1."""
    if not tag or len(tag.encode("utf-8")) > MAX_TAG_BYTES:
        raise InvalidInput(f"Tag names must be 1 to {MAX_TAG_BYTES} bytes.")
    if "order" in body:
        order = body["order"]
        if isinstance(order, bool) or not isinstance(order, int | float):
            raise MalformedContent("'order' must be a number.")
        if not 0 <= order <= 1:
            raise InvalidInput("'order' must be between 0 and 1.")
    return body


class Watcher(Protocol):
    """Something the node holds in memory from one type of global account data."""

    def check(self, content: dict[str, Any]) -> None:
        """Raise a domain error for content it cannot take (nothing is written)."""

    def written(self, user_id: str, content: dict[str, Any]) -> None:
        """The content was written."""


class AccountData:
    def __init__(self, store: AccountDataStore, push_rules: PushRuleStore,
                 streams: StreamWriter) -> None:
        self.store = store
        self.push_rules = push_rules
        self.streams = streams
        self._watchers: dict[str, Watcher] = {}

    def watch(self, data_type: str, watcher: Watcher) -> None:
        self._watchers[data_type] = watcher

    async def get(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any]:
        """One item; ``m.push_rules`` (global) is the user's current ruleset."""
        if room_id != GLOBAL:
            check_room_id(room_id)
        elif data_type == "m.push_rules":
            return push_rules_content(user_id, await self.push_rules.get_push_rules(user_id))
        content = await self.store.get_account_data(user_id, room_id, data_type)
        if content is None:
            raise NotFound("Room account data not found." if room_id else
                           "Account data not found.")
        return content

    async def set(self, user_id: str, room_id: str, data_type: str,
                  content: dict[str, Any]) -> None:
        if room_id != GLOBAL:
            check_room_id(room_id)
        if not data_type or len(data_type.encode("utf-8")) > MAX_TYPE_BYTES:
            raise InvalidInput(f"Account data type must be 1 to {MAX_TYPE_BYTES} bytes.")
        watcher = self._watchers.get(data_type) if room_id == GLOBAL else None
        if watcher is not None:
            watcher.check(content)
        await self.streams.write(
            lambda stream_id: self.store.set_account_data(user_id, room_id, data_type, content,
                                                          stream_id),
            users=[user_id])
        if watcher is not None:
            watcher.written(user_id, content)

    async def tags(self, user_id: str, room_id: str) -> dict[str, Any]:
        check_room_id(room_id)
        return await self.store.get_room_tags(user_id, room_id)

    async def set_tag(self, user_id: str, room_id: str, tag: str,
                      content: dict[str, Any]) -> None:
        check_room_id(room_id)
        content = validate_tag(tag, content)
        await self.streams.write(
            lambda stream_id: self.store.set_room_tag(user_id, room_id, tag, content, stream_id),
            users=[user_id])

    async def remove_tag(self, user_id: str, room_id: str, tag: str) -> None:
        check_room_id(room_id)
        await self.streams.write(
            lambda stream_id: self.store.remove_room_tag(user_id, room_id, tag, stream_id),
            users=[user_id])
