"""Pure unit tests of broker.filtering: parsing, validation and per-event checks (no node)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.errors import DomainError
from broker.filtering import (
    DEFAULT_FILTER,
    EventFilter,
    Filter,
    parse_room_event_filter,
    split_property_path,
)
from broker.http.errors import MatrixError, from_domain


def timeline(**kwargs: Any) -> Filter:
    return Filter.from_json({"room": {"timeline": kwargs}})


def bad(body: Any) -> MatrixError:
    with pytest.raises(DomainError) as info:
        Filter.from_json(body)
    return from_domain(info.value)


# -- validation ---------------------------------------------------------------------------------

def test_empty_filter_is_valid_and_allows_everything() -> None:
    f = Filter.from_json({})
    assert f.allows_timeline_event("m.room.message", "@a:x", True, "!r:x")
    assert f.allows_state_event("m.room.member", "@a:x")
    assert f.allows_room("!r:x")
    assert f.allows_account_data("m.direct")
    assert f.allows_presence("m.presence", "@a:x")
    assert f.allows_ephemeral("m.typing")
    assert f.event_format == "client"
    assert not f.include_leave and not f.lazy_load_members


def test_spec_example_filter_parses() -> None:
    f = Filter.from_json({
        "room": {
            "state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
            "timeline": {"limit": 10, "types": ["m.room.message"],
                         "not_rooms": ["!726s6s6q:example.com"],
                         "not_senders": ["@spam:example.com"]},
            "ephemeral": {"types": ["m.receipt", "m.typing"],
                          "not_rooms": ["!726s6s6q:example.com"],
                          "not_senders": ["@spam:example.com"]},
        },
        "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
        "event_format": "client",
        "event_fields": ["type", "content", "sender"],
    })
    assert f.timeline_limit(20) == 10
    assert f.allows_state_event("m.room.topic", "@a:x")
    assert not f.allows_state_event("m.room.topic", "@a:x", room_id="!726s6s6q:example.com")


def test_filter_that_is_not_an_object_is_bad_json() -> None:
    assert bad(["room"]).errcode == "M_BAD_JSON"


@pytest.mark.parametrize("body", [
    {"room": []},
    {"room": {"timeline": "x"}},
    {"presence": 5},
    {"event_fields": "content"},
    {"event_fields": [1]},
    {"room": {"rooms": "!a:x"}},
    {"room": {"include_leave": "yes"}},
    {"room": {"timeline": {"types": ["m.room.message", 3]}}},
    {"room": {"timeline": {"contains_url": 1}}},
    {"room": {"state": {"lazy_load_members": "true"}}},
    {"account_data": {"not_types": {}}},
])
def test_wrongly_typed_fields_are_bad_json(body: dict[str, Any]) -> None:
    error = bad(body)
    assert (error.status, error.errcode) == (400, "M_BAD_JSON")


@pytest.mark.parametrize("limit", [0, -5, "10", 1.5, True])
def test_limit_must_be_a_positive_integer(limit: Any) -> None:
    assert bad({"room": {"timeline": {"limit": limit}}}).errcode == "M_BAD_JSON"


def test_event_format_must_be_client_or_federation() -> None:
    assert bad({"event_format": "xml"}).errcode == "M_BAD_JSON"
    assert Filter.from_json({"event_format": "federation"}).event_format == "federation"


def test_room_ids_in_filters_must_be_room_ids() -> None:
    assert bad({"room": {"not_rooms": ["#alias:x"]}}).errcode == "M_BAD_JSON"
    assert bad({"room": {"timeline": {"rooms": ["@u:x"]}}}).errcode == "M_BAD_JSON"


def test_senders_in_filters_must_be_user_ids() -> None:
    assert bad({"presence": {"senders": ["!r:x"]}}).errcode == "M_BAD_JSON"


def test_error_names_the_offending_key() -> None:
    assert "room.timeline.limit" in bad({"room": {"timeline": {"limit": 0}}}).message


def test_unknown_keys_are_ignored() -> None:
    f = Filter.from_json({"org.example.extension": 1, "room": {"timeline": {"x": []}}})
    assert f.allows_timeline_event("m.room.message", "@a:x")


# -- types and wildcards ------------------------------------------------------------------------

def test_types_list_includes_only_listed_types() -> None:
    f = timeline(types=["m.room.message"])
    assert f.allows_timeline_event("m.room.message", "@a:x")
    assert not f.allows_timeline_event("m.room.member", "@a:x")


def test_empty_types_list_allows_nothing() -> None:
    assert not timeline(types=[]).allows_timeline_event("m.room.message", "@a:x")


def test_trailing_wildcard_matches_any_suffix() -> None:
    f = timeline(types=["m.room.*"])
    assert f.allows_timeline_event("m.room.message", "@a:x")
    assert f.allows_timeline_event("m.room.", "@a:x")
    assert not f.allows_timeline_event("m.roomy", "@a:x")
    assert not f.allows_timeline_event("m.reaction", "@a:x")


def test_wildcard_in_the_middle_and_start() -> None:
    f = timeline(types=["*.message", "m.*.invite"])
    assert f.allows_timeline_event("m.room.message", "@a:x")
    assert f.allows_timeline_event("m.call.invite", "@a:x")
    assert not f.allows_timeline_event("m.call.answer", "@a:x")


def test_lone_wildcard_matches_every_type() -> None:
    assert timeline(types=["*"]).allows_timeline_event("anything at all", "@a:x")


def test_regex_characters_in_types_are_literal() -> None:
    f = timeline(types=["m.room.message"])
    assert not f.allows_timeline_event("mxroomxmessage", "@a:x")
    f = timeline(types=["a+b(*"])
    assert f.allows_timeline_event("a+b(c", "@a:x")
    assert not f.allows_timeline_event("aab(c", "@a:x")


def test_wildcard_must_match_the_whole_type() -> None:
    f = timeline(types=["m.*.topic"])
    assert not f.allows_timeline_event("m.room.topic.extra", "@a:x")


def test_not_types_wins_over_types() -> None:
    f = timeline(types=["m.room.*"], not_types=["m.room.member"])
    assert f.allows_timeline_event("m.room.message", "@a:x")
    assert not f.allows_timeline_event("m.room.member", "@a:x")


def test_not_types_wildcard_excludes() -> None:
    f = timeline(not_types=["m.call.*"])
    assert not f.allows_timeline_event("m.call.invite", "@a:x")
    assert f.allows_timeline_event("m.room.message", "@a:x")


# -- senders, rooms, urls -----------------------------------------------------------------------

def test_senders_and_not_senders() -> None:
    f = timeline(senders=["@a:x", "@b:x"], not_senders=["@b:x"])
    assert f.allows_timeline_event("m.room.message", "@a:x")
    assert not f.allows_timeline_event("m.room.message", "@b:x")
    assert not f.allows_timeline_event("m.room.message", "@c:x")


def test_contains_url_true_keeps_only_events_with_url() -> None:
    f = timeline(contains_url=True)
    assert f.allows_timeline_event("m.room.message", "@a:x", True)
    assert not f.allows_timeline_event("m.room.message", "@a:x", False)


def test_contains_url_false_excludes_events_with_url() -> None:
    f = timeline(contains_url=False)
    assert not f.allows_timeline_event("m.room.message", "@a:x", True)
    assert f.allows_timeline_event("m.room.message", "@a:x", False)


def test_top_level_rooms_and_not_rooms() -> None:
    f = Filter.from_json({"room": {"rooms": ["!a:x", "!b:x"], "not_rooms": ["!b:x"]}})
    assert f.allows_room("!a:x")
    assert not f.allows_room("!b:x")
    assert not f.allows_room("!c:x")


def test_timeline_rooms_apply_when_room_given() -> None:
    f = timeline(rooms=["!a:x"])
    assert f.allows_timeline_event("m.room.message", "@u:x", room_id="!a:x")
    assert not f.allows_timeline_event("m.room.message", "@u:x", room_id="!b:x")


def test_separate_sections_filter_independently() -> None:
    f = Filter.from_json({
        "account_data": {"types": ["m.direct"]},
        "presence": {"not_senders": ["@spam:x"]},
        "room": {"ephemeral": {"not_types": ["m.typing"]},
                 "account_data": {"types": ["m.tag"]},
                 "state": {"types": ["m.room.name"]}},
    })
    assert f.allows_account_data("m.direct") and not f.allows_account_data("m.push_rules")
    assert not f.allows_presence("m.presence", "@spam:x") and f.allows_presence()
    assert not f.allows_ephemeral("m.typing") and f.allows_ephemeral("m.receipt")
    assert f.allows_room_account_data("m.tag") and not f.allows_room_account_data("m.other")
    assert f.allows_state_event("m.room.name", "@a:x")
    assert not f.allows_state_event("m.room.topic", "@a:x")
    assert f.allows_timeline_event("m.room.topic", "@a:x")


# -- flags and limits ---------------------------------------------------------------------------

def test_timeline_limit_defaults_and_caps() -> None:
    assert DEFAULT_FILTER.timeline_limit(20) == 20
    assert timeline(limit=5).timeline_limit(20) == 5
    assert timeline(limit=10**9).timeline_limit(20) == 1000
    assert timeline(limit=500).timeline_limit(20, maximum=100) == 100


def test_include_leave_and_lazy_loading_flags() -> None:
    f = Filter.from_json({"room": {"include_leave": True, "state": {
        "lazy_load_members": True, "include_redundant_members": True}}})
    assert f.include_leave
    assert f.lazy_load_members
    assert f.include_redundant_members


def test_lazy_load_members_on_timeline_only_does_not_enable_state_lazy_loading() -> None:
    assert not timeline(lazy_load_members=True).lazy_load_members


def test_unread_thread_notifications_flag() -> None:
    assert timeline(unread_thread_notifications=True).unread_thread_notifications
    assert not DEFAULT_FILTER.unread_thread_notifications


# -- event_fields -------------------------------------------------------------------------------

EVENT = {
    "type": "m.room.message", "sender": "@a:x", "event_id": "$e",
    "content": {"body": "hi", "msgtype": "m.text", "m.relates_to": {"rel_type": "m.thread"}},
    "unsigned": {"age": 5},
}


def test_event_fields_absent_returns_event_unchanged() -> None:
    assert DEFAULT_FILTER.apply_event_fields(EVENT) is EVENT


def test_event_fields_keep_only_listed_paths() -> None:
    f = Filter.from_json({"event_fields": ["type", "content.body"]})
    assert f.apply_event_fields(EVENT) == {"type": "m.room.message", "content": {"body": "hi"}}


def test_event_fields_escaped_dot_names_a_key_with_a_dot() -> None:
    f = Filter.from_json({"event_fields": ["content.m\\.relates_to.rel_type"]})
    assert f.apply_event_fields(EVENT) == {"content": {"m.relates_to": {"rel_type": "m.thread"}}}


def test_event_fields_missing_paths_are_skipped() -> None:
    f = Filter.from_json({"event_fields": ["content.nope", "state_key", "sender"]})
    assert f.apply_event_fields(EVENT) == {"sender": "@a:x"}


def test_event_fields_do_not_mutate_the_event() -> None:
    f = Filter.from_json({"event_fields": ["content", "content.body", "unsigned.age"]})
    before = repr(EVENT)
    result = f.apply_event_fields(EVENT)
    assert result["content"] == EVENT["content"] and result["unsigned"] == {"age": 5}
    assert repr(EVENT) == before


def test_split_property_path_handles_escapes() -> None:
    assert split_property_path("a.b") == ("a", "b")
    assert split_property_path("m\\.mentions.room") == ("m.mentions", "room")
    assert split_property_path("a\\\\.b") == ("a\\", "b")


# -- RoomEventFilter for /messages --------------------------------------------------------------

def test_room_event_filter_from_inline_json() -> None:
    f = parse_room_event_filter('{"types": ["m.room.message"], "limit": 3,'
                                ' "lazy_load_members": true}')
    assert f.limit == 3 and f.lazy_load_members
    assert f.allows_event({"type": "m.room.message", "sender": "@a:x", "content": {}})
    assert not f.allows_event({"type": "m.room.member", "sender": "@a:x", "content": {}})


def test_room_event_filter_allows_event_reads_url_from_content() -> None:
    f = parse_room_event_filter('{"contains_url": true}')
    assert f.allows_event({"type": "m.room.message", "content": {"url": "mxc://x/y"}})
    assert not f.allows_event({"type": "m.room.message", "content": {"body": "x"}})


def test_absent_room_event_filter_matches_all() -> None:
    assert parse_room_event_filter(None).matches_all
    assert not EventFilter({"types": ["a"]}).matches_all


def test_room_event_filter_that_is_not_json_is_invalid_param() -> None:
    with pytest.raises(DomainError) as info:
        parse_room_event_filter("{nope")
    assert (from_domain(info.value).status, info.value.errcode) == (400, "M_INVALID_PARAM")
