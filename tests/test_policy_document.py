"""``GET /_broker/admin/v1/policy``: the node's effective separation policy as one document
(its rules with their reasons, member limits, reachability, the directory's rule, profile
visibility, refusals per reason), for node admins only, on both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker.admin.reachability import ACCOUNT_DATA_TYPE, UNREACHABLE
from broker.attestations import ATTESTATION
from broker.group_rules import BY_VERIFIED_ONLY
from broker.message_tags import REASONS as TAG_REASONS
from broker.message_tags import STANDARD_TAGS, UNKNOWN
from broker.refusal_counts import KeptCounts
from broker.remote_classes import NOT_HOME_SERVER
from broker.remote_classes import REASONS as REMOTE_REASONS
from protocol.events import build_pdu, finalize_pdu
from protocol.room_versions import get_room_version
from protocol.signing import generate_signing_key
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import result_of

__all__ = ["admin"]

REASONS = ["room_shut_down", "official_group_by_verified_only",
           "official_group_own_organisation", "group_kind_fixed",
           "official_group_verified_only", "member_limit", "direct_room_two_members",
           "public_cannot_reach_verified", "invite_blocked"]


def policy(node: AdminNode) -> dict[str, Any]:
    return dict(node.ok("GET", "/policy"))


def test_the_document_lists_the_installed_rules_in_order_with_their_reasons(
        admin: AdminNode) -> None:
    rules = policy(admin)["rules"]
    assert [rule["name"] for rule in rules] == ["rooms_shut_down", "official_groups",
                                                "reachability", "invite_permissions"]
    assert [reason for rule in rules for reason in rule["reasons"]] == REASONS
    assert all(rule["description"] for rule in rules)


def test_every_reason_is_counted_from_zero(admin: AdminNode) -> None:
    document = policy(admin)
    assert document["refusals"] == {**dict.fromkeys(REASONS, 0), "unnamed": 0}
    assert document["refused"] == 0


def test_a_refusal_is_counted_under_its_reason(admin: AdminNode) -> None:
    admin.org("mha")
    vera, _ = admin.user("vera")
    admin.ok("POST", f"/users/{vera}/verification", {"organisation": "mha",
                                                     "basis": "document"})
    admin.user("pat")
    room_id = admin.client("pat", "POST", "/createRoom", {})[1]["room_id"]
    status, answer = admin.client("pat", "POST", f"/rooms/{quote(room_id)}/invite",
                                  {"user_id": vera})
    assert (status, answer["in.gov.broker.reason"]) == (403, UNREACHABLE)
    official = [{"type": "in.gov.broker.group", "state_key": "",
                 "content": {"kind": "official", "organisation": "mha"}}]
    assert admin.client("pat", "POST", "/createRoom", {"initial_state": official})[0] == 403
    document = policy(admin)
    assert (document["refusals"][UNREACHABLE], document["refusals"][BY_VERIFIED_ONLY],
            document["refused"]) == (1, 1, 2)


def test_refusals_are_written_after_the_request_and_counted_again_at_the_next_start(
        admin: AdminNode) -> None:
    admin.org("mha")
    admin.user("pat")
    official = [{"type": "in.gov.broker.group", "state_key": "",
                 "content": {"kind": "official", "organisation": "mha"}}]
    assert admin.client("pat", "POST", "/createRoom", {"initial_state": official})[0] == 403
    assert result_of(admin.stores.refusal_counts.totals()) == {}  # not on the request's path
    admin.local.run(admin.node.refusal_counts.flush())
    admin.node.policy.refusals.clear()  # a new process: its counters start empty...
    admin.local.run(KeptCounts(admin.stores.refusal_counts,
                               {"policy": admin.node.policy.refusals}).load())
    document = policy(admin)  # ...and take in the counts kept
    assert (document["refusals"][BY_VERIFIED_ONLY], document["refused"]) == (1, 1)


def test_reachability_counts_the_users_choices_and_forced_values(admin: AdminNode) -> None:
    admin.org("mha")
    for name in ("vera", "val", "vik"):
        user_id, _ = admin.user(name)
        admin.ok("POST", f"/users/{user_id}/verification", {"organisation": "mha",
                                                            "basis": "document"})
    assert admin.client("vera", "PUT", f"/user/{quote('@vera:admin.test')}/account_data/"
                        f"{ACCOUNT_DATA_TYPE}", {"public": True})[0] == 200
    admin.ok("PATCH", "/users/@val:admin.test", {"reachable_by_public": True})
    admin.ok("PATCH", "/users/@vik:admin.test", {"reachable_by_public": False})
    assert policy(admin)["reachability"] == {
        "default": False, "account_data_type": ACCOUNT_DATA_TYPE, "chosen_reachable": 1,
        "forced_reachable": 1, "forced_unreachable": 1}


def test_profile_visibility_shows_the_default_and_each_organisations_setting(
        admin: AdminNode) -> None:
    admin.org("mha", settings={"profile_visibility": {"public": []}})
    admin.org("mha.dm", "mha")
    visibility = policy(admin)["profile_visibility"]
    assert visibility["default"]["public"] == ["displayname", "avatar_url"]
    assert visibility["organisations"]["mha"]["set"] == {"public": []}
    assert visibility["organisations"]["mha.dm"] == {
        "set": {}, "effective": {**visibility["default"], "public": []}}


def test_the_directory_rule_and_shut_down_rooms_are_stated(admin: AdminNode) -> None:
    admin.user("pat")
    room_id = admin.client("pat", "POST", "/createRoom", {})[1]["room_id"]
    admin.ok("POST", f"/rooms/{quote(room_id)}/shutdown", {})
    document = policy(admin)
    assert "reachable by the public" in document["directory"]["rule"]
    assert document["rooms_shut_down"] == 1


def test_message_tags_and_their_refusals_are_stated(admin: AdminNode) -> None:
    admin.user("pat")
    room_id = admin.client("pat", "POST", "/createRoom", {})[1]["room_id"]
    status, answer = admin.client("pat", "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/t1",
                                  {"msgtype": "m.text", "body": "hi",
                                   "in.gov.broker.tags": ["no_such_tag"]})
    assert (status, answer["in.gov.broker.reason"]) == (400, UNKNOWN)
    tags = policy(admin)["message_tags"]
    assert tags["standard"] == list(STANDARD_TAGS)
    assert tags["refusals"] == {**dict.fromkeys(TAG_REASONS, 0), UNKNOWN: 1}


def test_what_other_nodes_attest_is_stated_with_the_cache_time(admin: AdminNode) -> None:
    assert policy(admin)["remote_classes"] == {
        "cache_seconds": 300, "users_held": 0, "ignored": dict.fromkeys(REMOTE_REASONS, 0)}


def test_an_attestation_passed_over_is_counted_under_its_rule(admin: AdminNode) -> None:
    """A membership event of a user of a.test, signed by c.test, vouching for them (as the
    node's rooms hand every stored remote membership over)."""
    version = get_room_version("12")
    pdu = build_pdu(version, room_id="!r:c.test", sender="@mallory:c.test",
                    type="m.room.member", content={
                        "membership": "invite",
                        ATTESTATION: {"class": "verified", "organisation": "mha", "since": 1}},
                    state_key="@xena:a.test", prev_event_ids=[], auth_event_ids=[], depth=1,
                    origin_server_ts=1)
    event = finalize_pdu(pdu, "c.test", generate_signing_key("c"), version)
    assert admin.node.rooms.on_remote_membership is not None
    admin.node.rooms.on_remote_membership(event)
    ignored = policy(admin)["remote_classes"]["ignored"]
    assert ignored == {**dict.fromkeys(REMOTE_REASONS, 0), NOT_HOME_SERVER: 1}


def test_the_member_limits_are_the_configured_ones(tmp_path: Path) -> None:
    made = AdminNode(tmp_path, "sqlite", config={"groups": {
        "official_max_members": 300, "informal_max_members": 50}})
    try:
        assert policy(made)["member_limits"] == {"official": 300, "informal": 50,
                                                 "direct": 2}
    finally:
        made.close()


@pytest.mark.parametrize("role", [None, ("org_admin", "mha"), ("auditor", None)])
def test_only_a_node_admin_reads_the_policy(admin: AdminNode, role: Any) -> None:
    admin.org("mha")
    user_id, token = admin.user("olga")
    if role is not None:
        admin.grant(user_id, role)
    admin.refused(admin.api("GET", "/policy", token), 403, "M_FORBIDDEN")
