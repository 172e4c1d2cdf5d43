"""The node config: validation errors name the key and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from broker.config import CacheBudgets, ConfigError, NodeConfig, load_config, parse_config


def _parse(raw: dict) -> object:
    return parse_config(raw, Path("/srv/node"))


def test_minimal_config_gets_safe_defaults() -> None:
    config = parse_config({"server_name": "ministry.example.gov"}, Path("/srv/node"))
    assert config.database_engine == "sqlite"
    assert config.database_path == Path("/srv/node/data/broker.db")
    assert config.registration_enabled is False
    assert config.default_room_version == "12"
    assert config.rate_limits_enabled is True


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^database\.pth: unknown key"):
        _parse({"server_name": "a.gov", "database": {"pth": "x"}})


def test_wrong_type_names_key_and_expected_type() -> None:
    with pytest.raises(ConfigError, match=r"^listeners\[0\]\.port: expected an integer"):
        _parse({"server_name": "a.gov", "listeners": [{"port": "eighty"}]})


def test_boolean_is_not_accepted_as_integer() -> None:
    with pytest.raises(ConfigError, match=r"^limits\.max_request_body_bytes: expected"):
        _parse({"server_name": "a.gov", "limits": {"max_request_body_bytes": True}})


def test_missing_server_name_is_required() -> None:
    with pytest.raises(ConfigError, match=r"^server_name: is required"):
        _parse({})


def test_engine_choice_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"^database\.engine: expected one of sqlite, postgres"):
        _parse({"server_name": "a.gov", "database": {"engine": "mysql"}})


def test_postgres_needs_a_dsn() -> None:
    with pytest.raises(ConfigError, match=r"^database\.dsn: is required"):
        _parse({"server_name": "a.gov", "database": {"engine": "postgres"}})


def test_invalid_server_name_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^server_name: expected a host name"):
        _parse({"server_name": "not a host"})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server_name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_node_refuses_to_start_with_a_bad_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "homeserver.yaml"
    path.write_text("server_name: a.gov\nlisteners:\n  - port: 8008\n    colour: blue\n")
    result = subprocess.run([sys.executable, "-m", "broker", "run", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ConfigError: listeners[0].colour: unknown key (expected one of: port, bind_address,"
        " resources, tls)")


def test_sample_config_is_valid() -> None:
    sample = Path(__file__).resolve().parent.parent / "config" / "homeserver.sample.yaml"
    config = load_config(sample)
    assert config.server_name == "ministry.example.gov"


def test_init_writes_a_valid_config_and_private_key(tmp_path: Path) -> None:
    from broker.init_config import write_initial_config

    written = write_initial_config(
        config_path=tmp_path / "homeserver.yaml", server_name="dept.example.gov", port=8448,
        bind_address="127.0.0.1", data_dir="data", database_engine="sqlite", database_dsn="",
        enable_registration=False, overwrite=False)
    config = load_config(written[0])
    assert config.listeners[0].port == 8448
    assert (config.signing_key_path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        write_initial_config(
            config_path=tmp_path / "homeserver.yaml", server_name="x.gov", port=1,
            bind_address="127.0.0.1", data_dir="data", database_engine="sqlite",
            database_dsn="", enable_registration=False, overwrite=False)


def test_federation_is_closed_by_default() -> None:
    config = parse_config({"server_name": "a.gov"}, Path("/srv/node"))
    assert config.federation.allow_list == ()
    assert config.federation.list_path is None
    assert config.federation.allow_private_addresses is False


def test_federation_allow_list_entries_must_be_server_names() -> None:
    with pytest.raises(ConfigError, match=r"^federation\.allow_list\[1\]: expected a server"):
        _parse({"server_name": "a.gov", "federation": {"allow_list": ["b.gov", "not valid"]}})


def test_federation_list_needs_an_authority_key() -> None:
    with pytest.raises(ConfigError, match=r"^federation\.federation_list\.authority_key"):
        _parse({"server_name": "a.gov",
                "federation": {"federation_list": {"path": "list.json"}}})


def test_listener_tls_needs_certificate_and_key() -> None:
    with pytest.raises(ConfigError, match=r"^listeners\[0\]\.tls: needs both"):
        _parse({"server_name": "a.gov",
                "listeners": [{"port": 8448, "tls": {"certificate": "cert.pem"}}]})


def test_pinned_keys_shape_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"^federation\.pinned_keys\.b\.gov"):
        _parse({"server_name": "a.gov", "federation": {"pinned_keys": {"b.gov": "abc"}}})


def test_encryption_by_default_choices_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"^rooms\.encryption_by_default: expected one of"):
        _parse({"server_name": "a.gov", "rooms": {"encryption_by_default": "sometimes"}})


def test_password_hashing_defaults_bound_memory_to_two_hashes() -> None:
    config = parse_config({"server_name": "a.gov"}, Path("/srv/node"))
    settings = config.password_hashing
    assert (settings.concurrency, settings.queue_limit) == (2, 32)
    assert settings.memory_bound_bytes == 2 * 64 * 1024 * 1024


def test_password_hashing_settings_are_read() -> None:
    config = parse_config({"server_name": "a.gov", "password_hashing": {
        "concurrency": 4, "queue_limit": 0, "memory_cost_kib": 19456, "time_cost": 2}},
        Path("/srv/node"))
    settings = config.password_hashing
    assert (settings.concurrency, settings.queue_limit, settings.memory_cost_kib,
            settings.time_cost) == (4, 0, 19456, 2)


def test_password_hashing_needs_at_least_one_hash_at_a_time() -> None:
    with pytest.raises(ConfigError, match=r"^password_hashing\.concurrency: expected at least 1"):
        _parse({"server_name": "a.gov", "password_hashing": {"concurrency": 0}})


def test_password_hashing_memory_cost_has_a_floor() -> None:
    with pytest.raises(ConfigError, match=r"^password_hashing\.memory_cost_kib: expected at least"):
        _parse({"server_name": "a.gov", "password_hashing": {"memory_cost_kib": 1024}})


def test_cache_budgets_default_to_the_documented_sizes() -> None:
    config = parse_config({"server_name": "a.gov"}, Path("/srv/node"))
    assert config.caches == CacheBudgets(live_rooms=2_500, user_rooms=20_000, tokens=50_000)


def test_cache_budgets_are_read() -> None:
    config = parse_config({"server_name": "a.gov", "caches": {"live_rooms": 10, "tokens": 3}},
                          Path("/srv/node"))
    assert (config.caches.live_rooms, config.caches.user_rooms, config.caches.tokens) == (
        10, 20_000, 3)


def test_a_cache_budget_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^caches\.live_rooms: expected at least 1, got 0$"):
        _parse({"server_name": "a.gov", "caches": {"live_rooms": 0}})


def _email(**section: Any) -> NodeConfig:
    return parse_config({"server_name": "a.gov", "email": section}, Path("/srv/node"))


def test_without_an_smtp_host_the_node_sends_no_email() -> None:
    assert parse_config({"server_name": "a.gov"}, Path("/srv/node")).smtp.enabled is False


def test_the_smtp_port_defaults_to_the_usual_one_of_its_tls_mode() -> None:
    ports = {mode: _email(**{"from": "n@a.gov", "smtp": {"host": "mx", "tls": mode}}).smtp.port
             for mode in ("none", "starttls", "tls")}
    assert ports == {"none": 25, "starttls": 587, "tls": 465}


def test_an_smtp_host_needs_a_from_address() -> None:
    with pytest.raises(ConfigError, match=r"^email\.from: is required when email\.smtp\.host"):
        _email(smtp={"host": "mx"})


def test_the_tls_mode_is_one_of_three() -> None:
    with pytest.raises(ConfigError, match=r"^email\.smtp\.tls: expected one of none, starttls,"
                       " tls, got 'ssl'"):
        _email(**{"from": "n@a.gov", "smtp": {"host": "mx", "tls": "ssl"}})


def test_the_smtp_password_may_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "smtp.txt").write_text("s3cret\n")
    config = parse_config({"server_name": "a.gov", "email": {
        "from": "n@a.gov", "smtp": {"host": "mx", "username": "broker",
                                    "password_path": "smtp.txt"}}}, tmp_path)
    assert (config.smtp.username, config.smtp.password) == ("broker", "s3cret")


def test_an_unreadable_smtp_password_file_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^email\.smtp\.password_path: cannot read"):
        parse_config({"server_name": "a.gov", "email": {
            "from": "n@a.gov", "smtp": {"host": "mx", "username": "u",
                                        "password_path": "missing.txt"}}}, tmp_path)


def test_a_password_and_a_password_file_are_not_both_given() -> None:
    with pytest.raises(ConfigError, match=r"^email\.smtp: set either password or"):
        _email(**{"from": "n@a.gov", "smtp": {"host": "mx", "username": "u", "password": "p",
                                               "password_path": "p.txt"}})


def test_a_username_needs_a_password() -> None:
    with pytest.raises(ConfigError, match=r"^email\.smtp: needs both username and password"):
        _email(**{"from": "n@a.gov", "smtp": {"host": "mx", "username": "u"}})


def test_email_codes_live_at_least_a_minute() -> None:
    with pytest.raises(ConfigError, match=r"^email\.codes\.lifetime_seconds: expected at least"):
        _email(codes={"lifetime_seconds": 5})


def test_group_member_limits_default_to_the_documented_sizes() -> None:
    config = parse_config({"server_name": "a.gov"}, Path("/srv/node"))
    assert (config.groups.official_max_members, config.groups.informal_max_members) == (
        1000, 1000)


def test_group_member_limits_are_read() -> None:
    config = parse_config({"server_name": "a.gov", "groups": {
        "official_max_members": 300, "informal_max_members": 500}}, Path("/srv/node"))
    assert (config.groups.official_max_members, config.groups.informal_max_members) == (
        300, 500)


def test_a_group_member_limit_below_two_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^groups\.official_max_members: "):
        _parse({"server_name": "a.gov", "groups": {"official_max_members": 1}})


def test_metrics_are_off_without_a_port() -> None:
    assert parse_config({"server_name": "ministry.example.gov"}, Path("/srv/node")).metrics is None


def test_metrics_listen_on_loopback_unless_told_otherwise() -> None:
    config = parse_config({"server_name": "ministry.example.gov", "metrics": {"port": 9101}},
                          Path("/srv/node"))
    assert config.metrics is not None
    assert (config.metrics.port, config.metrics.bind_address) == (9101, "127.0.0.1")


def test_a_metrics_bind_address_is_kept() -> None:
    config = parse_config({"server_name": "ministry.example.gov",
                           "metrics": {"port": 9101, "bind_address": "10.0.0.5"}},
                          Path("/srv/node"))
    assert config.metrics is not None and config.metrics.bind_address == "10.0.0.5"
