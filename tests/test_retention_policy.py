"""Retention policies and their config: durations with units, the node's bounds clamping every
policy (the default included), the default for rooms that state none, nothing expiring while
retention is disabled, and state events never expiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock as FakeReactor

from broker.clock import Clock
from broker.config import ConfigError, parse_config, parse_duration
from broker.retention import Retention, RetentionSettings, is_expired
from protocol.events import Event
from protocol.room_versions import get_room_version

DAY = 86_400_000


def _settings(retention: dict[str, Any]) -> RetentionSettings:
    return parse_config({"server_name": "a.gov", "retention": retention},
                        Path("/srv/node")).retention


def _event(content: dict[str, Any], *, state_key: str | None = None, ts: int = 0,
           event_type: str = "m.room.message") -> Event:
    pdu: dict[str, Any] = {"type": event_type, "room_id": "!r:a.gov", "sender": "@u:a.gov",
                           "content": content, "origin_server_ts": ts, "depth": 1,
                           "prev_events": [], "auth_events": []}
    if state_key is not None:
        pdu["state_key"] = state_key
    return Event(pdu, get_room_version("12"), event_id=f"$e{ts}")


def _room(max_lifetime: Any = None) -> dict[tuple[str, str], Event]:
    if max_lifetime is None:
        return {}
    return {("m.room.retention", ""): _event({"max_lifetime": max_lifetime}, state_key="",
                                              event_type="m.room.retention")}


def _retention(**settings: Any) -> Retention:
    return Retention(RetentionSettings(enabled=True, **settings), Clock(FakeReactor()))


@pytest.mark.parametrize("value, ms", [(1500, 1500), ("1500", 1500), ("30s", 30_000),
                                       ("12h", 12 * 3_600_000), ("90d", 90 * DAY),
                                       ("2w", 14 * DAY), ("5m", 300_000), ("250ms", 250)])
def test_durations_are_milliseconds_or_a_number_with_a_unit(value: Any, ms: int) -> None:
    assert parse_duration("k", value) == ms


@pytest.mark.parametrize("value", ["ten days", "12 hours", "-5s", "1.5d", "", "d"])
def test_a_malformed_duration_is_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^retention\.allowed_lifetime_max: expected a"
                                          r" duration such as 30s"):
        _settings({"allowed_lifetime_max": value})


def test_a_zero_duration_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^retention\.default_policy\.max_lifetime: expected"
                                          r" a duration of at least 1 ms"):
        _settings({"default_policy": {"max_lifetime": "0d"}})


def test_a_minimum_above_the_maximum_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^retention: expected allowed_lifetime_min <="):
        _settings({"allowed_lifetime_min": "30d", "allowed_lifetime_max": "1d"})


def test_a_purge_interval_under_a_second_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^retention\.purge_interval: expected at least 1s"):
        _settings({"purge_interval": 500})


def test_retention_is_disabled_unless_set_and_the_to_device_key_keeps_working() -> None:
    config = parse_config({"server_name": "a.gov", "retention": {
        "undelivered_to_device_days": 3}}, Path("/srv/node"))
    assert config.retention == RetentionSettings()
    assert config.retention.enabled is False
    assert config.undelivered_to_device_days == 3


def test_the_config_keys_are_read_into_milliseconds() -> None:
    settings = _settings({"enabled": True, "default_policy": {"max_lifetime": "90d"},
                          "allowed_lifetime_min": "1d", "allowed_lifetime_max": "365d",
                          "purge_interval": "12h"})
    assert settings == RetentionSettings(True, 90 * DAY, DAY, 365 * DAY, 12 * 3_600_000)


def test_the_federation_queue_keeps_entries_for_seven_days_unless_set() -> None:
    assert _settings({}).federation_queue_max_age_ms == 7 * DAY
    assert _settings({"federation_queue_max_age": "2d"}).federation_queue_max_age_ms == 2 * DAY


def test_a_malformed_federation_queue_max_age_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="retention.federation_queue_max_age"):
        _settings({"federation_queue_max_age": "a week"})


def test_a_room_policy_applies_as_stated_within_the_bounds() -> None:
    retention = _retention(min_lifetime_ms=DAY, max_lifetime_ms=30 * DAY)
    assert retention.room_lifetime(_room(7 * DAY)) == 7 * DAY


def test_a_room_policy_above_the_maximum_is_clamped_to_it() -> None:
    retention = _retention(max_lifetime_ms=30 * DAY)
    assert retention.room_lifetime(_room(365 * DAY)) == 30 * DAY
    assert retention.describe(_room(365 * DAY)) == {
        "stated_max_lifetime": 365 * DAY, "effective_max_lifetime": 30 * DAY,
        "source": "room", "organisation": None, "clamped": True}


def test_a_room_policy_below_the_minimum_is_raised_to_it() -> None:
    retention = _retention(min_lifetime_ms=DAY)
    assert retention.room_lifetime(_room(60_000)) == DAY


def test_the_default_applies_to_a_room_stating_no_policy() -> None:
    retention = _retention(default_max_lifetime_ms=90 * DAY)
    assert retention.room_lifetime(_room()) == 90 * DAY
    assert retention.describe(_room())["source"] == "default"


def test_the_maximum_caps_the_default() -> None:
    retention = _retention(default_max_lifetime_ms=90 * DAY, max_lifetime_ms=30 * DAY)
    assert retention.room_lifetime(_room()) == 30 * DAY
    assert retention.describe(_room())["clamped"] is True


def test_the_maximum_applies_to_a_room_with_no_policy_and_no_default() -> None:
    retention = _retention(max_lifetime_ms=30 * DAY)
    assert retention.room_lifetime(_room()) == 30 * DAY


def test_without_policy_default_or_maximum_events_are_kept() -> None:
    assert _retention().room_lifetime(_room()) is None


@pytest.mark.parametrize("stated", ["7d", 0, -5, True, 1.5])
def test_a_malformed_room_policy_is_ignored_and_the_default_applies(stated: Any) -> None:
    retention = _retention(default_max_lifetime_ms=90 * DAY)
    assert retention.room_lifetime(_room(stated)) == 90 * DAY


def test_nothing_expires_while_retention_is_disabled() -> None:
    retention = Retention(RetentionSettings(enabled=False, max_lifetime_ms=DAY),
                          Clock(FakeReactor()))
    assert retention.room_lifetime(_room(DAY)) is None
    assert retention.describe(_room(DAY))["source"] == "disabled"


def test_an_event_expires_once_its_lifetime_has_passed() -> None:
    message = _event({"body": "hi"}, ts=1000)
    assert not is_expired(message, 500, 1500)
    assert is_expired(message, 500, 1501)


def test_a_state_event_never_expires() -> None:
    assert not is_expired(_event({"name": "x"}, state_key="", ts=0,
                                 event_type="m.room.name"), 1, 10**12)
