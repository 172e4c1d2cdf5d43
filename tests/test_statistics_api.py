"""The metadata-only statistics API (``GET /_broker/admin/v1/statistics``) on a node, on both
engines: what real sends, syncs, room creations and uploads count per organisation and day,
the CSV form, who may read which rows, bad input, a restart, and that nothing of the content
is kept.  Counts reach the database when the node writes them (``statistics.flush``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from twisted.internet import defer

from broker.media import files as media_files
from broker.statistics import FLUSH_SECONDS
from tests.admin_harness import AdminNode
from tests.inprocess_node import InProcessNode
from tests.storage_helpers import result_of

DAY = "2026-01-01"  # the in-process node's clock starts on it
BODY = "the budget figures are secret"
FILE_NAME = "cabinet-minutes.pdf"
FILE = b"%PDF minutes of the cabinet"
TXN = count()


class Scene:
    """mha with mha.dm and mea; ``vera`` verified for mha, ``dan`` for mha.dm, ``pat`` in no
    organisation; ``aud`` an auditor over mha."""

    def __init__(self, node: AdminNode, tmp_path: Path) -> None:
        self.node, self.tmp_path = node, tmp_path
        node.ministries("aud", "auditor")
        self.ids = {name: node.user(name)[0] for name in ("vera", "dan", "pat")}
        for name, org in (("vera", "mha"), ("dan", "mha.dm")):
            node.ok("POST", f"/users/{self.ids[name]}/verification",
                    {"organisation": org, "basis": "document"})
        self.room_id = self.create("vera", {"preset": "public_chat"})
        for name in ("dan", "pat"):
            assert node.client(name, "POST", f"/join/{quote(self.room_id)}", {})[0] == 200

    def create(self, who: str, body: dict[str, Any]) -> str:
        status, answer = self.node.client(who, "POST", "/createRoom", body)
        assert status == 200, answer
        return str(answer["room_id"])

    def send(self, who: str, times: int = 1) -> None:
        for _ in range(times):
            path = f"/rooms/{quote(self.room_id)}/send/m.room.message/t{next(TXN)}"
            status, answer = self.node.client(who, "PUT", path,
                                              {"msgtype": "m.text", "body": BODY})
            assert status == 200, answer

    def upload(self, who: str, data: bytes = FILE) -> None:
        status, answer = self.node.local.call(
            "POST", f"/_matrix/media/v3/upload?filename={FILE_NAME}",
            self.node.tokens[who], raw=data)
        assert status == 200, answer

    def flush(self) -> None:
        self.node.local.run(self.node.node.statistics.flush())

    def read(self, who: str = "root", query: str = "") -> tuple[int, Any]:
        return self.node.api_as(who, "GET", f"/statistics?from={DAY}&to={DAY}{query}")

    def rows(self, who: str = "root", query: str = "") -> dict[str | None, dict[str, Any]]:
        status, answer = self.read(who, query)
        assert status == 200, answer
        return {row["organisation"]: row for row in answer["rows"]}

    def restart(self) -> None:
        """Stop the node (its last write) and start another on its database."""
        node = self.node
        result_of(node.node.statistics.stop())
        node.local.close()
        node.local = InProcessNode(self.tmp_path, "admin.test", engine=node.engine,
                                   dsn=node.dsn)
        node.node, node.stores = node.local.node, node.local.node.stores
        node.local.run(node.node.admin.classes.load())  # who is verified, as a start loads


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    # Media files are written on this thread: the fake reactor runs no pool threads.
    monkeypatch.setattr(media_files.threads, "deferToThread", defer.maybeDeferred)
    node = AdminNode(tmp_path, request.param)
    try:
        yield Scene(node, tmp_path)
    finally:
        node.close()


def test_messages_sent_count_per_senders_organisation(scene: Scene) -> None:
    scene.send("vera", 2)
    scene.send("dan")
    scene.send("pat", 3)
    scene.flush()
    rows = scene.rows()
    assert {org: row["messages_sent"] for org, row in rows.items()} == {
        "mha": 2, "mha.dm": 1, None: 3}
    assert {row["day"] for row in rows.values()} == {DAY}


def test_active_users_are_distinct_senders_and_syncers(scene: Scene) -> None:
    scene.send("vera", 3)
    assert scene.node.client("vera", "GET", "/sync?timeout=0")[0] == 200
    assert scene.node.client("dan", "GET", "/sync?timeout=0")[0] == 200
    scene.flush()
    rows = scene.rows()
    assert (rows["mha"]["active_users"], rows["mha.dm"]["active_users"]) == (1, 1)


def test_rooms_created_count_by_kind(scene: Scene) -> None:
    scene.create("vera", {"preset": "private_chat"})
    scene.create("vera", {"preset": "trusted_private_chat", "is_direct": True,
                          "invite": [scene.ids["dan"]]})
    scene.flush()
    assert scene.rows()["mha"]["rooms_created"] == {"official": 0, "informal": 2, "direct": 1}


def test_the_room_census_counts_the_rooms_held_by_kind(scene: Scene) -> None:
    scene.create("vera", {"preset": "trusted_private_chat", "is_direct": True,
                          "invite": [scene.ids["dan"]]})
    scene.create("dan", {"preset": "private_chat", "initial_state": [
        {"type": "in.gov.broker.group", "state_key": "",
         "content": {"kind": "official", "organisation": "mha.dm"}}]})
    scene.node.local.run(scene.node.node.room_census.count())
    scene.flush()
    rows = scene.rows()
    assert (rows["mha"]["rooms"], rows["mha.dm"]["rooms"]) == (
        {"official": 0, "informal": 1, "direct": 1}, {"official": 1, "informal": 0, "direct": 0})


def test_a_later_census_of_the_day_keeps_the_larger_count(scene: Scene) -> None:
    census = scene.node.node.room_census
    scene.node.local.run(census.count())
    scene.flush()
    scene.create("vera", {"preset": "private_chat"})
    scene.node.local.run(census.count())
    scene.flush()
    assert scene.rows()["mha"]["rooms"]["informal"] == 2


def test_uploads_count_files_and_bytes(scene: Scene) -> None:
    scene.upload("vera")
    scene.upload("vera", b"x" * 1000)
    scene.flush()
    row = scene.rows()["mha"]
    assert (row["files_uploaded"], row["file_bytes"]) == (2, len(FILE) + 1000)


def test_policy_refusals_count_per_rule_and_organisation(scene: Scene) -> None:
    official = {"preset": "private_chat", "initial_state": [
        {"type": "in.gov.broker.group", "state_key": "",
         "content": {"kind": "official", "organisation": "mha"}}]}
    status, answer = scene.node.client("pat", "POST", "/createRoom", official)
    assert status == 403, answer
    scene.flush()
    assert scene.rows()[None]["refusals"] == {answer["in.gov.broker.reason"]: 1}


def test_a_send_refused_for_its_tags_counts_under_its_reason(scene: Scene) -> None:
    path = f"/rooms/{quote(scene.room_id)}/send/m.room.message/t{next(TXN)}"
    status, answer = scene.node.client("vera", "PUT", path, {
        "msgtype": "m.text", "body": BODY, "in.gov.broker.tags": ["no_such_tag"]})
    assert status == 400, answer
    scene.flush()
    row = scene.rows()["mha"]
    assert (row["refusals"], row["messages_sent"]) == ({"unknown_message_tag": 1}, 0)


def test_csv_answers_the_same_rows_with_a_column_per_count(scene: Scene) -> None:
    scene.send("vera", 2)
    scene.upload("dan")
    scene.flush()
    request = scene.node.local.http(
        "GET", "/_broker/admin/v1/statistics", scene.node.root,
        args={"from": DAY, "to": DAY, "format": "csv"})
    for _ in range(50):
        if request.finished:
            break
        scene.node.local.advance(0)
    assert request.responseCode in (None, 200)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"text/csv; charset=utf-8"]
    table = list(csv.DictReader(io.StringIO(b"".join(request.written).decode())))
    by_org = {row["organisation"]: row for row in table}
    assert (by_org["mha"]["messages_sent"], by_org["mha"]["day"]) == ("2", DAY)
    assert (by_org["mha.dm"]["files_uploaded"], by_org["mha.dm"]["file_bytes"]) == (
        "1", str(len(FILE)))


def test_an_auditor_reads_the_rows_of_the_organisations_it_covers(scene: Scene) -> None:
    scene.send("vera")
    scene.send("dan")
    scene.send("pat")
    scene.flush()
    assert set(scene.rows("aud")) == {"mha", "mha.dm"}  # not the node's row
    assert set(scene.rows("aud", "&organisation=mha.dm")) == {"mha.dm"}


def test_an_auditor_may_not_read_another_organisation(scene: Scene) -> None:
    scene.node.refused(scene.read("aud", "&organisation=mea"), 403, "M_FORBIDDEN")


def test_a_user_without_a_role_is_refused(scene: Scene) -> None:
    scene.node.refused(scene.read("pat"), 403, "M_FORBIDDEN")


@pytest.mark.parametrize("query", [
    "?from=2026-13-01", "?from=20260101", "?to=tomorrow", "?from=2026-01-02&to=2026-01-01",
    "?from=2025-01-01&to=2026-01-02", "?format=xml", "?organisation=nowhere"])
def test_bad_input_is_refused_as_an_invalid_parameter(scene: Scene, query: str) -> None:
    scene.node.refused(scene.node.api_as("root", "GET", f"/statistics{query}"), 400,
                       "M_INVALID_PARAM")


def test_the_range_defaults_to_the_thirty_days_up_to_today(scene: Scene) -> None:
    answer = scene.node.ok("GET", "/statistics")
    assert (answer["from"], answer["to"]) == ("2025-12-03", DAY)


def test_a_restart_keeps_the_aggregates_and_adds_to_them(scene: Scene) -> None:
    scene.send("vera", 2)
    scene.restart()  # written at shutdown
    scene.send("vera")
    scene.flush()
    row = scene.rows()["mha"]
    assert (row["messages_sent"], row["active_users"]) == (3, 1)


def test_counts_are_written_only_when_the_interval_has_passed(scene: Scene) -> None:
    local = scene.node.local
    scene.node.node.statistics.start(local.reactor)  # writes what the scene counted
    scene.send("vera")
    local.advance(FLUSH_SECONDS - 1)
    assert scene.rows()["mha"]["messages_sent"] == 0
    local.advance(1)
    assert scene.rows()["mha"]["messages_sent"] == 1


def test_nothing_of_the_content_or_who_is_kept(scene: Scene) -> None:
    scene.send("vera")
    scene.upload("vera")
    scene.flush()
    kept = result_of(scene.node.node.db.run_interaction(
        "test_statistics_rows", lambda cur: cur.select_all("SELECT * FROM statistics_daily")))
    text = repr(kept)
    assert kept
    for secret in (BODY, FILE_NAME, FILE.decode(), scene.room_id, *scene.ids.values(),
                   "vera"):
        assert secret not in text
