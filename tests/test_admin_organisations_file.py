"""The organisations file the node config names (``organisations.path``), on both engines: it
is applied at start when its content changed since it was last applied (create or update what
it names), so a restart never loses a change made through the API; a wrong file stops the
start with a one-line ConfigError naming its line and field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.config import ConfigError
from tests.admin_harness import AdminNode

FILE = """\
organisations:
  - id: mha
    name: Ministry of Home Affairs
  - id: mha.dm
    name: Disaster Management
    parent: mha
"""


@pytest.fixture(params=["sqlite", "postgres"])
def configured(request: Any, tmp_path: Path) -> Iterator[AdminNode]:
    (tmp_path / "organisations.yaml").write_text(FILE)
    made = AdminNode(tmp_path, request.param,
                     config={"organisations": {"path": "organisations.yaml"}})
    try:
        yield made
    finally:
        made.close()


def _start(node: AdminNode) -> None:
    node.local.run(node.node.apply_organisations_file())


def test_the_node_applies_the_file_when_it_starts(configured: AdminNode) -> None:
    configured.local.run(configured.node.start())
    assert configured.organisation_ids() == ["mha", "mha.dm"]
    assert configured.last_entry()["actor"] == "config:organisations.path"


def test_a_restart_keeps_a_change_made_through_the_api(configured: AdminNode) -> None:
    _start(configured)
    configured.ok("PATCH", "/organisations/mha", {"name": "Home Affairs"})
    configured.org("mea")
    _start(configured)  # the file did not change: nothing is applied
    assert configured.ok("GET", "/organisations/mha")["name"] == "Home Affairs"
    assert configured.organisation_ids() == ["mea", "mha", "mha.dm"]


def test_an_edited_file_wins_for_the_fields_it_names(configured: AdminNode) -> None:
    _start(configured)
    configured.ok("PATCH", "/organisations/mha", {"name": "Home Affairs",
                                                   "email_domains": ["mha.gov.in"]})
    path = configured.local.config_path.parent / "organisations.yaml"
    path.write_text(FILE.replace("Ministry of Home Affairs", "MHA"))
    _start(configured)
    mha = configured.ok("GET", "/organisations/mha")
    assert (mha["name"], mha["email_domains"]) == ("MHA", ["mha.gov.in"])


def test_the_file_sets_what_a_correct_email_code_does(configured: AdminNode) -> None:
    path = configured.local.config_path.parent / "organisations.yaml"
    path.write_text(FILE + "    settings: {email_verification: auto}\n")
    _start(configured)
    assert configured.ok("GET", "/organisations/mha.dm")["settings"] == {
        "email_verification": "auto"}


def test_a_wrong_email_verification_setting_stops_the_start(configured: AdminNode) -> None:
    path = configured.local.config_path.parent / "organisations.yaml"
    path.write_text(FILE + "    settings: {email_verification: maybe}\n")
    with pytest.raises(ConfigError) as raised:
        _start(configured)
    assert "organisations[1].settings.email_verification: must be one of: queue, auto" in str(
        raised.value)
    assert configured.organisation_ids() == []


def test_a_wrong_file_stops_the_start_naming_its_line(configured: AdminNode) -> None:
    path = configured.local.config_path.parent / "organisations.yaml"
    path.write_text(FILE + "  - id: mea\n    name: External\n    parent: nowhere\n")
    with pytest.raises(ConfigError) as raised:
        _start(configured)
    assert str(raised.value) == ("organisations.path: organisations.yaml:9:"
                                 " organisations[2].parent: unknown organisation 'nowhere'")
    assert configured.organisation_ids() == []


def test_a_missing_file_stops_the_start(configured: AdminNode) -> None:
    (configured.local.config_path.parent / "organisations.yaml").unlink()
    with pytest.raises(ConfigError, match="organisations.path: .*does not exist"):
        _start(configured)


def test_the_sample_organisations_file_is_valid(tmp_path: Path) -> None:
    from broker.admin.org_file import read_organisations_file
    from broker.admin.organisations import check_entries

    sample = Path(__file__).resolve().parent.parent / "config" / "organisations.yaml"
    orgs = check_entries(read_organisations_file(sample).entries, 0)
    assert {o.org_id for o in orgs} == {"mha", "mha.dm", "mha.dm.ndma", "mea"}


def test_broker_run_stops_with_the_one_line_error_and_status_2(tmp_path: Path) -> None:
    from tests.node_harness import NodeProcess

    (tmp_path / "organisations.yaml").write_text(FILE.replace("parent: mha", "parent: mxa"))
    node = NodeProcess(tmp_path, overrides={"organisations.path": "organisations.yaml"})
    with pytest.raises(RuntimeError, match="node exited early"):
        node.start()
    assert node.process is not None and node.process.returncode == 2
    assert ("ConfigError: organisations.path: organisations.yaml:6: organisations[1].parent:"
            " unknown organisation 'mxa'") in node.log()
