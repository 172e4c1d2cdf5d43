"""The live room cache keeps the rooms used last within its budget, and any room beyond it that
is pinned by a write in flight or still held by a caller, as the same object."""

from __future__ import annotations

import gc
import weakref

import pytest

from broker.rooms.live_room import LiveRoom
from broker.rooms.room_cache import LiveRoomCache
from protocol.room_versions import get_room_version


def live_room(room_id: str) -> LiveRoom:
    return LiveRoom(room_id=room_id, room_version=get_room_version("12"), state={},
                    extremities=[], depth=0, state_group=0, state_group_depth=0, last_stream=0)


def forgotten(cache: LiveRoomCache, room_id: str) -> bool:
    """Whether the room is out of memory (looking does not count as a use)."""
    gc.collect()
    return room_id not in cache


def test_the_room_used_least_recently_goes_first() -> None:
    cache = LiveRoomCache(budget=2)
    cache["!a"], cache["!b"] = live_room("!a"), live_room("!b")
    cache.get("!a")
    cache["!c"] = live_room("!c")
    assert forgotten(cache, "!b")
    assert cache.get("!a") is not None and cache.get("!c") is not None


def test_a_room_within_the_budget_stays_when_nobody_holds_it() -> None:
    cache = LiveRoomCache(budget=2)
    cache["!a"] = live_room("!a")
    assert not forgotten(cache, "!a")


def test_a_room_beyond_the_budget_that_a_caller_holds_is_the_same_object() -> None:
    cache = LiveRoomCache(budget=1)
    held = cache["!a"] = live_room("!a")
    cache["!b"] = live_room("!b")
    gc.collect()
    assert cache.get("!a") is held


def test_a_held_room_found_again_counts_as_used() -> None:
    cache = LiveRoomCache(budget=1)
    held = cache["!a"] = live_room("!a")
    cache["!b"] = live_room("!b")
    cache.get("!a")
    del held
    assert forgotten(cache, "!b")
    assert cache.get("!a") is not None


def test_a_pinned_room_stays_beyond_the_budget() -> None:
    cache = LiveRoomCache(budget=1)
    room = cache["!a"] = live_room("!a")
    cache.pin(room)
    ref = weakref.ref(room)
    del room
    cache["!b"] = live_room("!b")
    gc.collect()
    assert cache.get("!a") is ref()
    assert ref() is not None


def test_a_room_is_forgotten_once_its_last_pin_goes() -> None:
    cache = LiveRoomCache(budget=1)
    room = cache["!a"] = live_room("!a")
    cache.pin(room)
    cache.pin(room)
    ref = weakref.ref(room)
    del room
    cache["!b"] = live_room("!b")
    pinned = ref()
    assert pinned is not None
    cache.unpin(pinned)
    del pinned
    assert not forgotten(cache, "!a")
    cache.unpin(ref())  # type: ignore[arg-type]
    assert forgotten(cache, "!a")


def test_a_popped_room_is_not_handed_out_even_while_pinned() -> None:
    cache = LiveRoomCache(budget=2)
    room = cache["!a"] = live_room("!a")
    cache.pin(room)
    cache.pop("!a")
    assert cache.get("!a") is None
    cache.unpin(room)


def test_unpinning_a_room_that_is_not_pinned_is_refused() -> None:
    cache = LiveRoomCache(budget=1)
    room = cache["!a"] = live_room("!a")
    with pytest.raises(ValueError, match="not pinned"):
        cache.unpin(room)


def test_a_budget_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LiveRoomCache(budget=0)


def test_len_counts_the_rooms_held_beyond_the_budget() -> None:
    cache = LiveRoomCache(budget=1)
    held = [live_room("!a"), live_room("!b"), live_room("!c")]
    for room in held:
        cache[room.room_id] = room
    assert len(cache) == 3
    del held
    gc.collect()
    assert len(cache) == 1
