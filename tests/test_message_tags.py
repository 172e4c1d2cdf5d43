"""Message tags checked on send (``broker.message_tags``) and their config section: which tags a
sender may use, the auto-delete lifetime and its bounds, and the refusal names counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.config import STANDARD_TAGS, ConfigError, TagsConfig, parse_config
from broker.errors import InvalidInput
from broker.filtering import NOT_TAGS_FILTER, TAGS_FILTER, EventFilter
from broker.message_tags import (
    LIFETIME,
    LIFETIME_FIELD,
    MALFORMED,
    NOT_TAGGABLE,
    REASON_FIELD,
    TAGS_FIELD,
    UNKNOWN,
    MessageTags,
    tags_of,
)

CONFIG = TagsConfig(custom=("audit",), organisations={"mha": ("cabinet",)},
                    auto_delete_default_ms=3_600_000, auto_delete_min_ms=60_000,
                    auto_delete_max_ms=86_400_000)
ORGANISATIONS = {"@vera:x.test": "mha", "@mel:x.test": "mea"}


def tags(config: TagsConfig = CONFIG) -> MessageTags:
    return MessageTags(config, ORGANISATIONS.get)


def message(*names: Any, **fields: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": "hello", TAGS_FIELD: list(names), **fields}


def refusal(check: MessageTags, user_id: str, event_type: str, content: dict[str, Any]
            ) -> str:
    with pytest.raises(InvalidInput) as raised:
        check.check(user_id, event_type, content)
    assert raised.value.errcode == "M_INVALID_PARAM"
    return str(raised.value.extra[REASON_FIELD])


def test_every_standard_tag_is_allowed() -> None:
    assert tags().check("@pat:x.test", "m.room.message", message(*STANDARD_TAGS)) is not None


def test_a_message_without_tags_is_not_looked_at() -> None:
    assert tags().check("@pat:x.test", "m.room.message", {"body": "plain"}) is None


def test_an_unknown_tag_is_refused_and_counted() -> None:
    check = tags()
    assert refusal(check, "@pat:x.test", "m.room.message", message("secret")) == UNKNOWN
    assert check.refusals[UNKNOWN] == 1


def test_a_tag_the_node_adds_is_allowed_for_anyone() -> None:
    assert tags().check("@pat:x.test", "m.room.message", message("audit")) is None


def test_an_organisations_tag_is_allowed_for_its_verified_members() -> None:
    assert tags().check("@vera:x.test", "m.room.message", message("cabinet")) is None


def test_an_organisations_tag_is_refused_to_members_of_another_organisation() -> None:
    assert refusal(tags(), "@mel:x.test", "m.room.message", message("cabinet")) == UNKNOWN


def test_an_organisations_tag_is_refused_to_a_public_user() -> None:
    assert refusal(tags(), "@pat:x.test", "m.room.message", message("cabinet")) == UNKNOWN


@pytest.mark.parametrize("value", ["confidential", [1], [None], ["priority"] * 17])
def test_tags_that_are_not_a_short_list_of_names_are_malformed(value: Any) -> None:
    content = {"body": "x", TAGS_FIELD: value}
    assert refusal(tags(), "@pat:x.test", "m.room.message", content) == MALFORMED


def test_tags_on_an_encrypted_message_are_checked_in_its_cleartext() -> None:
    content = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AAAA", TAGS_FIELD: ["x"]}
    assert refusal(tags(), "@pat:x.test", "m.room.encrypted", content) == UNKNOWN


def test_tags_on_an_event_type_that_carries_none_are_refused() -> None:
    content = {"key": "👍", TAGS_FIELD: ["priority"]}
    assert refusal(tags(), "@pat:x.test", "m.reaction", content) == NOT_TAGGABLE


def test_auto_delete_without_a_lifetime_takes_the_default() -> None:
    assert tags().check("@pat:x.test", "m.room.message", message("auto_delete")) == 3_600_000


def test_auto_delete_takes_the_lifetime_given() -> None:
    content = message("auto_delete", **{LIFETIME_FIELD: 120_000})
    assert tags().check("@pat:x.test", "m.room.message", content) == 120_000


@pytest.mark.parametrize("lifetime", [59_999, 86_400_001, "120000", 1.5e5, True])
def test_a_lifetime_out_of_bounds_or_not_an_integer_is_refused(lifetime: Any) -> None:
    content = message("auto_delete", **{LIFETIME_FIELD: lifetime})
    assert refusal(tags(), "@pat:x.test", "m.room.message", content) == LIFETIME


def test_a_lifetime_without_the_auto_delete_tag_is_refused() -> None:
    content = message("priority", **{LIFETIME_FIELD: 120_000})
    assert refusal(tags(), "@pat:x.test", "m.room.message", content) == LIFETIME


def test_tags_of_reads_only_names() -> None:
    assert tags_of({TAGS_FIELD: ["priority", 3, "confidential"]}) == ["priority",
                                                                      "confidential"]
    assert tags_of({TAGS_FIELD: "priority"}) == []


# -- config ------------------------------------------------------------------------------------

def config_of(section: dict[str, Any], tmp_path: Path) -> TagsConfig:
    return parse_config({"server_name": "x.test", "tags": section}, tmp_path).tags


def test_the_tags_section_defaults(tmp_path: Path) -> None:
    assert config_of({}, tmp_path) == TagsConfig()


def test_the_tags_section_is_read(tmp_path: Path) -> None:
    config = config_of({"custom": ["audit"], "organisations": {"mha": ["cabinet"]},
                        "auto_delete": {"default_seconds": 120, "min_seconds": 60,
                                        "max_seconds": 600}}, tmp_path)
    assert config.custom == ("audit",) and config.organisations == {"mha": ("cabinet",)}
    assert (config.auto_delete_min_ms, config.auto_delete_default_ms,
            config.auto_delete_max_ms) == (60_000, 120_000, 600_000)


@pytest.mark.parametrize("section, key", [
    ({"custom": ["Top Secret"]}, "tags.custom[0]"),
    ({"organisations": {"mha": "cabinet"}}, "tags.organisations.mha"),
    ({"organisations": {"mha": ["a b"]}}, "tags.organisations.mha[0]"),
    ({"auto_delete": {"default_seconds": 30, "min_seconds": 60}}, "tags.auto_delete"),
])
def test_a_wrong_tags_section_names_its_key(section: dict[str, Any], key: str,
                                            tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        config_of(section, tmp_path)
    assert raised.value.key == key


# -- the tags filter (RoomEventFilter) ---------------------------------------------------------

def room_filter(**fields: Any) -> EventFilter:
    names = {"tags": TAGS_FILTER, "not_tags": NOT_TAGS_FILTER}
    return EventFilter({names[key]: value for key, value in fields.items()}, room_event=True)


def passes(flt: EventFilter, content: dict[str, Any]) -> bool:
    return flt.allows("m.room.message", "@pat:x.test", False, "!r:x.test", content)


def test_a_tags_filter_passes_events_with_one_of_its_tags() -> None:
    flt = room_filter(tags=["priority", "action_required"])
    assert passes(flt, message("confidential", "priority"))
    assert not passes(flt, message("confidential"))
    assert not passes(flt, {"body": "untagged"})


def test_a_not_tags_filter_passes_events_with_none_of_its_tags() -> None:
    flt = room_filter(not_tags=["confidential"])
    assert passes(flt, {"body": "untagged"})
    assert not passes(flt, message("priority", "confidential"))


def test_a_tags_filter_reads_past_items_that_are_not_names() -> None:
    assert passes(room_filter(tags=["priority"]), {TAGS_FIELD: [["odd"], {"x": 1}, "priority"]})


def test_a_tags_filter_makes_the_filter_look_at_events() -> None:
    assert not room_filter(tags=["priority"]).matches_all
    assert EventFilter({}, room_event=True).matches_all
