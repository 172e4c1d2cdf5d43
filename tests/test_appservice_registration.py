"""Application service registration files: the standard shape read from ``app_services``,
every mistake refused at start with the file and the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.appservice.registration import load_registrations
from broker.config import ConfigError, load_config, parse_config

SERVER = "ministry.example.gov"


def registration(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "bridge", "url": "http://127.0.0.1:29333", "as_token": "as-secret",
        "hs_token": "hs-secret", "sender_localpart": "bridgebot",
        "namespaces": {"users": [{"exclusive": True, "regex": "@bridge_.*:ministry"}],
                       "aliases": [{"exclusive": False, "regex": "#bridge_.*"}]}}
    data.update(changes)
    return data


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def config_with(tmp_path: Path, *files: str) -> Any:
    return parse_config({"server_name": SERVER, "app_services": list(files)}, tmp_path)


def test_a_registration_file_is_read_from_the_config(tmp_path: Path) -> None:
    write(tmp_path, "bridge.yaml", registration(receive_ephemeral=True, rate_limited=False))
    [service] = config_with(tmp_path, "bridge.yaml").app_services
    assert service.id == "bridge" and service.url == "http://127.0.0.1:29333"
    assert service.sender == f"@bridgebot:{SERVER}"
    assert service.receive_ephemeral and not service.receive_to_device
    assert not service.rate_limited
    assert service.owns_user(f"@bridge_alice:{SERVER}")
    assert not service.owns_user(f"@alice:{SERVER}")
    assert service.in_alias_namespace(f"#bridge_x:{SERVER}")
    assert not service.in_alias_namespace(f"#bridge_x:{SERVER}", exclusive=True)


def test_the_unstable_opt_in_names_are_understood(tmp_path: Path) -> None:
    path = write(tmp_path, "bridge.yaml", registration(**{
        "de.sorunome.msc2409.push_ephemeral": True,
        "org.matrix.msc4203.receive_to_device": True}))
    [service] = load_registrations([path], SERVER)
    assert service.receive_ephemeral and service.receive_to_device


def test_a_null_url_means_no_traffic(tmp_path: Path) -> None:
    [service] = load_registrations([write(tmp_path, "a.yaml", registration(url=None))], SERVER)
    assert service.url is None


def test_the_sample_registration_is_valid() -> None:
    sample = Path(__file__).resolve().parent.parent / "config" / "appservice.sample.yaml"
    [service] = load_registrations([sample], SERVER)
    assert service.id == "example-bridge" and service.receive_ephemeral


@pytest.mark.parametrize(("changes", "field"), [
    ({"as_token": ""}, "as_token"),
    ({"url": "ftp://x"}, "url"),
    ({"sender_localpart": "Bad Name"}, "sender_localpart"),
    ({"rate_limited": "no"}, "rate_limited"),
    ({"namespaces": {"users": [{"exclusive": True, "regex": "(["}]}},
     "namespaces.users[0].regex"),
    ({"namespaces": {"users": [{"regex": "@a.*"}]}}, "namespaces.users[0].exclusive"),
    ({"namespaces": {"groups": []}}, "namespaces.groups"),
    ({"colour": "blue"}, "colour"),
    ({"hs_token": "as-secret"}, "hs_token"),
])
def test_a_bad_field_stops_the_start_naming_file_and_field(
        tmp_path: Path, changes: dict[str, Any], field: str) -> None:
    write(tmp_path, "bridge.yaml", registration(**changes))
    with pytest.raises(ConfigError) as refused:
        config_with(tmp_path, "bridge.yaml")
    assert refused.value.key == "app_services"
    assert f"bridge.yaml: {field}: " in str(refused.value)


def test_a_missing_required_field_is_named(tmp_path: Path) -> None:
    data = registration()
    del data["url"]
    write(tmp_path, "bridge.yaml", data)
    with pytest.raises(ConfigError, match=r"bridge.yaml: url: is required"):
        config_with(tmp_path, "bridge.yaml")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere.yaml: registration file does not exist"):
        config_with(tmp_path, "nowhere.yaml")


def test_two_services_with_one_id_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", registration())
    write(tmp_path, "b.yaml", registration(as_token="other-as", hs_token="other-hs"))
    with pytest.raises(ConfigError, match=r"b.yaml: id: 'bridge' is also the id in .*a.yaml"):
        config_with(tmp_path, "a.yaml", "b.yaml")


@pytest.mark.parametrize("field", ["as_token", "hs_token"])
def test_a_token_used_twice_is_refused(tmp_path: Path, field: str) -> None:
    write(tmp_path, "a.yaml", registration())
    other = {"as_token": "other-as", "hs_token": "other-hs", field: "hs-secret"}
    write(tmp_path, "b.yaml", registration(id="second", **other))
    with pytest.raises(ConfigError, match=rf"b.yaml: {field}: the same token is the hs_token"):
        config_with(tmp_path, "a.yaml", "b.yaml")


def test_no_services_by_default(tmp_path: Path) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(yaml.safe_dump({"server_name": SERVER}))
    assert load_config(path).app_services == []
