"""Load and validate the node's YAML config.

The schema below is the single source of truth for every key: its type, default and meaning
(docs/config.md documents the same keys).  Anything wrong stops the node with one line naming the
key and what was expected: ``ConfigError: database.engine: expected one of sqlite, postgres``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from broker.account_validity import ValiditySettings
from broker.appservice.registration import Registration, RegistrationError, load_registrations
from broker.auth import DEFAULT_TOKENS
from broker.gc_tuning import (
    DEFAULT_FULL_COLLECTION_GROWTH,
    DEFAULT_FULL_COLLECTION_SECONDS,
    DEFAULT_THRESHOLDS,
)
from broker.notifier import DEFAULT_POSITIONS, DEFAULT_WAKE_BATCH, DEFAULT_WAKE_BUDGET_S
from broker.passwords import HashingSettings
from broker.retention import (
    DEFAULT_FEDERATION_QUEUE_MAX_AGE_MS,
    DEFAULT_PURGE_INTERVAL_MS,
    RetentionSettings,
)
from broker.rooms.live_room import DEFAULT_LIVE_ROOMS
from broker.rooms.user_rooms import DEFAULT_USER_ROOMS

_HASHING = HashingSettings()
TLS_MODES = ("none", "starttls", "tls")
# The usual port of each TLS mode (``email.smtp.port: 0``).
SMTP_PORTS = {"none": 25, "starttls": 587, "tls": 465}
RATE_LIMITS = ("messages", "login", "registration", "email_codes", "app_messages",
               "app_recipient")


class ConfigError(Exception):
    """A config problem, with the dotted key it concerns."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


@dataclass(frozen=True)
class Key:
    """One config key: its type(s), default (None = required unless optional) and choices."""

    types: tuple[type, ...]
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None


def _k(*types: type, **kwargs: Any) -> Key:
    return Key(types=types, **kwargs)


SCHEMA: dict[str, Any] = {
    "server_name": _k(str, required=True),
    "public_baseurl": _k(str, default=""),
    "data_dir": _k(str, default="data"),
    "signing_key_path": _k(str, default=""),
    "listeners": [
        {
            "port": _k(int, required=True, minimum=0),
            "bind_address": _k(str, default="127.0.0.1"),
            "resources": [_k(str, choices=("client", "federation", "media"))],
            "tls": {
                "certificate": _k(str, default=""),
                "private_key": _k(str, default=""),
            },
        }
    ],
    "database": {
        "engine": _k(str, default="sqlite", choices=("sqlite", "postgres")),
        "path": _k(str, default=""),
        "dsn": _k(str, default=""),
        "pool_size": _k(int, default=4, minimum=1),
    },
    "registration": {
        "enabled": _k(bool, default=False),
    },
    "rooms": {
        "default_room_version": _k(str, default="12", choices=("10", "11", "12")),
        "encryption_by_default": _k(str, default="private", choices=("private", "all", "off")),
    },
    "retention": {
        "undelivered_to_device_days": _k(int, default=7, minimum=1),
        # Durations: milliseconds (an integer) or a number with a unit (30s, 12h, 90d).
        "enabled": _k(bool, default=False),
        "default_policy": {
            "max_lifetime": _k(int, str),
        },
        "allowed_lifetime_min": _k(int, str),
        "allowed_lifetime_max": _k(int, str),
        "purge_interval": _k(int, str, default=DEFAULT_PURGE_INTERVAL_MS),
        "federation_queue_max_age": _k(int, str, default=DEFAULT_FEDERATION_QUEUE_MAX_AGE_MS),
        "deactivated_account_data": _k(int, str),
    },
    "account_validity": {
        "enabled": _k(bool, default=False),
        "period": _k(int, str),
        "renew_before": _k(int, str),
    },
    "sync": {
        "wake_batch": _k(int, default=DEFAULT_WAKE_BATCH, minimum=1),
        "wake_budget_ms": _k(float, int, default=DEFAULT_WAKE_BUDGET_S * 1000, minimum=0.1),
        "change_positions": _k(int, default=DEFAULT_POSITIONS, minimum=1),
    },
    "gc": {
        "tuned": _k(bool, default=True),
        "young_threshold": _k(int, default=DEFAULT_THRESHOLDS[0], minimum=1),
        "full_collection_seconds": _k(float, int, default=DEFAULT_FULL_COLLECTION_SECONDS,
                                      minimum=1),
        "full_collection_growth": _k(float, int, default=DEFAULT_FULL_COLLECTION_GROWTH,
                                     minimum=0),
    },
    "groups": {
        "official_max_members": _k(int, default=1000, minimum=2),
        "informal_max_members": _k(int, default=1000, minimum=2),
        "remote_class_seconds": _k(int, default=300, minimum=1),
        "remote_class_ask_seconds": _k(float, int, default=10.0, minimum=0.1),
    },
    "tags": {
        "custom": [_k(str)],
        "organisations": _k(dict, default={}),
        "auto_delete": {
            "default_seconds": _k(int, default=86_400, minimum=1),
            "min_seconds": _k(int, default=60, minimum=1),
            "max_seconds": _k(int, default=30 * 86_400, minimum=1),
            "check_seconds": _k(int, default=10, minimum=1),
            "batch": _k(int, default=100, minimum=1),
        },
    },
    "limits": {
        "max_request_body_bytes": _k(int, default=1_048_576, minimum=1024),
        "max_upload_bytes": _k(int, default=52_428_800, minimum=1024),
    },
    "rate_limits": {
        "enabled": _k(bool, default=True),
        "messages": {"per_second": _k(float, int, default=20, minimum=0),
                     "burst": _k(int, default=100, minimum=1)},
        "login": {"per_second": _k(float, int, default=0.5, minimum=0),
                  "burst": _k(int, default=10, minimum=1)},
        "registration": {"per_second": _k(float, int, default=0.2, minimum=0),
                         "burst": _k(int, default=5, minimum=1)},
        "email_codes": {"per_second": _k(float, int, default=1 / 60, minimum=0),
                        "burst": _k(int, default=3, minimum=1)},
        # eGov applications (docs/admin/apps.md): requests per app, messages per recipient.
        "app_messages": {"per_second": _k(float, int, default=1000, minimum=0),
                         "burst": _k(int, default=2000, minimum=1)},
        "app_recipient": {"per_second": _k(float, int, default=1, minimum=0),
                          "burst": _k(int, default=20, minimum=1)},
    },
    "apps": {
        "allow_private_callbacks": _k(bool, default=False),
        "max_message_bytes": _k(int, default=65_536, minimum=1024),
    },
    "password_hashing": {
        "concurrency": _k(int, default=_HASHING.concurrency, minimum=1),
        "queue_limit": _k(int, default=_HASHING.queue_limit, minimum=0),
        "memory_cost_kib": _k(int, default=_HASHING.memory_cost_kib, minimum=8192),
        "time_cost": _k(int, default=_HASHING.time_cost, minimum=1),
    },
    "media": {
        "store_path": _k(str, default=""),
    },
    # Encryption at rest (docs/admin/encryption-at-rest.md): off without a key file or the
    # BROKER_AT_REST_KEY environment variable.
    "at_rest": {
        "key_file": _k(str, default=""),
    },
    # Prometheus metrics on a listener of their own (docs/admin/metrics.md): off without a port.
    "metrics": {
        "port": _k(int, minimum=0),
        "bind_address": _k(str, default="127.0.0.1"),
    },
    "caches": {
        "live_rooms": _k(int, default=DEFAULT_LIVE_ROOMS, minimum=1),
        "user_rooms": _k(int, default=DEFAULT_USER_ROOMS, minimum=1),
        "tokens": _k(int, default=DEFAULT_TOKENS, minimum=1),
    },
    # What this node keeps of other servers' answers (docs/config.md, "remote_caches").
    "remote_caches": {
        "media_expiry_ms": _k(int, default=24 * 60 * 60 * 1000, minimum=0),
        "media_files": _k(int, default=10_000, minimum=1),
        "alias_ttl_ms": _k(int, default=60_000, minimum=0),
        "aliases": _k(int, default=10_000, minimum=1),
        "profile_ttl_ms": _k(int, default=5 * 60 * 1000, minimum=0),
        "profiles": _k(int, default=10_000, minimum=1),
    },
    "federation": {
        "enabled": _k(bool, default=True),
        "allow_list": [_k(str)],
        "federation_list": {
            "path": _k(str, default=""),
            "url": _k(str, default=""),
            "authority_key": _k(str, default=""),
            "refresh_seconds": _k(int, default=3600, minimum=10),
        },
        "pinned_keys": _k(dict, default={}),
        "allow_private_addresses": _k(bool, default=False),
        "verify_tls": _k(bool, default=True),
    },
    "organisations": {
        "path": _k(str, default=""),
    },
    "audit": {
        "sign_interval_seconds": _k(int, default=300, minimum=1),
    },
    "email": {
        "from": _k(str, default=""),
        "smtp": {
            "host": _k(str, default=""),
            "port": _k(int, default=0, minimum=0),
            "tls": _k(str, default="starttls", choices=TLS_MODES),
            "username": _k(str, default=""),
            "password": _k(str, default=""),
            "password_path": _k(str, default=""),
            "timeout_seconds": _k(int, default=30, minimum=1),
            "concurrency": _k(int, default=2, minimum=1),
            "queue_limit": _k(int, default=32, minimum=0),
        },
        "codes": {
            "lifetime_seconds": _k(int, default=900, minimum=60),
            "max_attempts": _k(int, default=5, minimum=1),
        },
    },
    # Application service registration files (docs/admin/application-services.md).
    "app_services": [_k(str)],
    "logging": {
        "level": _k(str, default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    },
}

DEFAULT_LISTENER_RESOURCES = ["client", "federation", "media"]


def _type_name(types: tuple[type, ...]) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def _check_value(key: str, spec: Key, value: Any) -> Any:
    # YAML booleans are ints in Python; keep them apart.
    if isinstance(value, bool) and bool not in spec.types:
        raise ConfigError(key, f"expected {_type_name(spec.types)}, got {value!r}")
    if not isinstance(value, spec.types):
        raise ConfigError(key, f"expected {_type_name(spec.types)}, got {value!r}")
    if spec.choices and value not in spec.choices:
        raise ConfigError(key, f"expected one of {', '.join(map(str, spec.choices))}, got {value!r}")
    if spec.minimum is not None and isinstance(value, int | float) and value < spec.minimum:
        raise ConfigError(key, f"expected at least {spec.minimum}, got {value!r}")
    return value


def validate(schema: Any, value: Any, key: str = "") -> Any:
    """Check ``value`` against ``schema``, filling defaults; raises ConfigError."""
    if isinstance(schema, Key):
        if value is None:
            if schema.required:
                raise ConfigError(key, "is required")
            return schema.default
        return _check_value(key, schema, value)
    if isinstance(schema, list):
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {value!r}")
        return [validate(schema[0], item, f"{key}[{i}]") for i, item in enumerate(value)]
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {value!r}")
    unknown = sorted(set(value) - set(schema))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise ConfigError(where, f"unknown key (expected one of: {', '.join(schema)})")
    return {
        name: validate(sub, value.get(name), f"{key}.{name}" if key else name)
        for name, sub in schema.items()
    }


@dataclass(frozen=True)
class Listener:
    port: int
    bind_address: str
    resources: tuple[str, ...]
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None


@dataclass(frozen=True)
class FederationConfig:
    """Which servers this node federates with, and how it reaches them."""

    enabled: bool = True
    allow_list: tuple[str, ...] = ()
    list_path: Path | None = None
    list_url: str = ""
    list_authority_key: str = ""
    list_refresh_seconds: int = 3600
    pinned_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    allow_private_addresses: bool = False
    verify_tls: bool = True


@dataclass(frozen=True)
class CacheBudgets:
    """How much the node keeps in memory, least recently used dropped first: live rooms,
    users' room lists and resolved access tokens (each counted in entries)."""

    live_rooms: int = DEFAULT_LIVE_ROOMS
    user_rooms: int = DEFAULT_USER_ROOMS
    tokens: int = DEFAULT_TOKENS


@dataclass(frozen=True)
class RemoteCaches:
    """How long (ms) and how many of other servers' answers are kept: media files on disk,
    room aliases and profiles in memory."""

    media_expiry_ms: int = 24 * 60 * 60 * 1000
    media_files: int = 10_000
    alias_ttl_ms: int = 60_000
    aliases: int = 10_000
    profile_ttl_ms: int = 5 * 60 * 1000
    profiles: int = 10_000


@dataclass(frozen=True)
class MetricsListener:
    """Where ``/metrics`` is served (a listener of its own; none without ``metrics.port``)."""

    port: int
    bind_address: str = "127.0.0.1"


@dataclass(frozen=True)
class SyncConfig:
    """Long-polling /sync: syncs woken per reactor turn after a change (at most
    ``wake_batch``, for at most ``wake_budget_ms``), and how many users (and rooms) the
    notifier remembers the last change position of."""

    wake_batch: int = DEFAULT_WAKE_BATCH
    wake_budget_ms: float = DEFAULT_WAKE_BUDGET_S * 1000
    change_positions: int = DEFAULT_POSITIONS


@dataclass(frozen=True)
class GcConfig:
    """How ``broker run`` tunes the garbage collector (see :mod:`broker.gc_tuning`)."""

    tuned: bool = True
    young_threshold: int = DEFAULT_THRESHOLDS[0]
    full_collection_seconds: float = DEFAULT_FULL_COLLECTION_SECONDS
    full_collection_growth: float = DEFAULT_FULL_COLLECTION_GROWTH


@dataclass(frozen=True)
class AppsConfig:
    """eGov applications: whether callback URLs may name private addresses (tests, a closed
    network), and the largest message body an app may post."""

    allow_private_callbacks: bool = False
    max_message_bytes: int = 65_536


@dataclass(frozen=True)
class GroupsConfig:
    """The most members (joined or invited) of an official group and of an informal room, and
    how long what another node attests of its user (verified or public) is held here."""

    official_max_members: int = 1000
    informal_max_members: int = 1000
    remote_class_seconds: int = 300
    remote_class_ask_seconds: float = 10.0


# The message tags every node knows (docs/admin/tags.md).
STANDARD_TAGS = ("confidential", "priority", "auto_delete", "for_information",
                 "action_required")
# A tag's name: lower case letters, digits, '_', '-' and '.', at most 64 characters.
TAG_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class TagsConfig:
    """Message tags: those the node adds to the standard ones (anyone may use them), those of
    each organisation (its verified members may use them), and the bounds of an auto-delete
    lifetime with how often and how many due messages the node deletes at a time."""

    custom: tuple[str, ...] = ()
    organisations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    auto_delete_default_ms: int = 86_400_000
    auto_delete_min_ms: int = 60_000
    auto_delete_max_ms: int = 30 * 86_400_000
    auto_delete_check_seconds: int = 10
    auto_delete_batch: int = 100


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how the node sends email (``host`` empty: it sends none)."""

    host: str = ""
    port: int = 587
    tls: str = "starttls"
    username: str = ""
    password: str = ""
    from_address: str = ""
    timeout_seconds: int = 30
    concurrency: int = 2
    queue_limit: int = 32

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class EmailCodes:
    """One-time codes sent by email: how long one lives and how many tries it takes."""

    lifetime_seconds: int = 900
    max_attempts: int = 5


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: int


@dataclass
class NodeConfig:
    """The validated config, with paths resolved relative to the config file's folder."""

    server_name: str
    public_baseurl: str
    data_dir: Path
    signing_key_path: Path
    listeners: list[Listener]
    database_engine: str
    database_path: Path
    database_dsn: str
    database_pool_size: int
    registration_enabled: bool
    default_room_version: str
    encryption_by_default: str
    undelivered_to_device_days: int
    max_request_body_bytes: int
    max_upload_bytes: int
    rate_limits_enabled: bool
    rate_limits: dict[str, RateLimit]
    media_store_path: Path
    log_level: str
    sync: SyncConfig = field(default_factory=SyncConfig)
    gc: GcConfig = field(default_factory=GcConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    password_hashing: HashingSettings = field(default_factory=HashingSettings)
    organisations_path: Path | None = None
    audit_sign_interval_seconds: int = 300
    caches: CacheBudgets = field(default_factory=CacheBudgets)
    remote_caches: RemoteCaches = field(default_factory=RemoteCaches)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    email_codes: EmailCodes = field(default_factory=EmailCodes)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    apps: AppsConfig = field(default_factory=AppsConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    account_validity: ValiditySettings = field(default_factory=ValiditySettings)
    at_rest_key_file: Path | None = None
    metrics: MetricsListener | None = None
    app_services: list[Registration] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def _check_server_name(name: str) -> None:
    host = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.[]:")
    if not host or any(c not in allowed for c in name):
        raise ConfigError("server_name", f"expected a host name such as example.gov, got {name!r}")


def parse_config(raw: Any, base_dir: Path) -> NodeConfig:
    """Validate a parsed YAML document into a NodeConfig."""
    data = validate(SCHEMA, raw)
    _check_server_name(data["server_name"])

    def resolve(path: str, default: Path) -> Path:
        p = Path(os.path.expanduser(path)) if path else default
        return p if p.is_absolute() else (base_dir / p)

    data_dir = resolve(data["data_dir"], base_dir / "data")
    db = data["database"]
    if db["engine"] == "postgres" and not db["dsn"]:
        raise ConfigError("database.dsn", "is required when database.engine is postgres")
    listeners = _parse_listeners(data["listeners"], resolve, base_dir)
    federation = _parse_federation(data["federation"], resolve, base_dir)
    limits = data["rate_limits"]
    return NodeConfig(
        server_name=data["server_name"],
        public_baseurl=data["public_baseurl"],
        data_dir=data_dir,
        signing_key_path=resolve(data["signing_key_path"], data_dir / "signing.key"),
        listeners=listeners,
        database_engine=db["engine"],
        database_path=resolve(db["path"], data_dir / "broker.db"),
        database_dsn=db["dsn"],
        database_pool_size=db["pool_size"],
        registration_enabled=data["registration"]["enabled"],
        default_room_version=data["rooms"]["default_room_version"],
        encryption_by_default=data["rooms"]["encryption_by_default"],
        undelivered_to_device_days=data["retention"]["undelivered_to_device_days"],
        max_request_body_bytes=data["limits"]["max_request_body_bytes"],
        max_upload_bytes=data["limits"]["max_upload_bytes"],
        rate_limits_enabled=limits["enabled"],
        rate_limits={name: RateLimit(float(limits[name]["per_second"]), limits[name]["burst"])
                     for name in RATE_LIMITS},
        media_store_path=resolve(data["media"]["store_path"], data_dir / "media"),
        log_level=data["logging"]["level"],
        sync=SyncConfig(**data["sync"]),
        gc=GcConfig(**data["gc"]),
        federation=federation,
        password_hashing=HashingSettings(**data["password_hashing"]),
        organisations_path=resolve(data["organisations"]["path"], base_dir)
        if data["organisations"]["path"] else None,
        audit_sign_interval_seconds=data["audit"]["sign_interval_seconds"],
        caches=CacheBudgets(**data["caches"]),
        remote_caches=RemoteCaches(**data["remote_caches"]),
        smtp=_parse_smtp(data["email"], resolve),
        email_codes=EmailCodes(**data["email"]["codes"]),
        groups=GroupsConfig(**data["groups"]),
        apps=AppsConfig(**data["apps"]),
        tags=_parse_tags(data["tags"]),
        retention=_parse_retention(data["retention"]),
        account_validity=_parse_validity(data["account_validity"]),
        at_rest_key_file=resolve(data["at_rest"]["key_file"], base_dir)
        if data["at_rest"]["key_file"] else None,
        metrics=MetricsListener(**data["metrics"]) if data["metrics"]["port"] is not None
        else None,
        app_services=_load_app_services(data, resolve, base_dir),
        raw=data,
    )


def _load_app_services(data: dict[str, Any], resolve: Any, base_dir: Path
                       ) -> list[Registration]:
    """The registration files ``app_services`` lists, read and checked."""
    try:
        return load_registrations([resolve(p, base_dir) for p in data["app_services"]],
                                  data["server_name"])
    except RegistrationError as e:
        raise ConfigError("app_services", str(e)) from None


def _parse_federation(data: dict[str, Any], resolve: Any, base_dir: Path) -> FederationConfig:
    for index, name in enumerate(data["allow_list"]):
        try:
            _check_server_name(name)
        except ConfigError as e:
            raise ConfigError(f"federation.allow_list[{index}]",
                              f"expected a server name, got {name!r}") from e
    pinned = data["pinned_keys"]
    for server, keys in pinned.items():
        if not isinstance(keys, dict) or not all(
                isinstance(k, str) and k.startswith("ed25519:") and isinstance(v, str)
                for k, v in keys.items()):
            raise ConfigError(f"federation.pinned_keys.{server}",
                              "expected a mapping of 'ed25519:<key id>' to base64 public keys")
    flist = data["federation_list"]
    if (flist["path"] or flist["url"]) and not flist["authority_key"]:
        raise ConfigError("federation.federation_list.authority_key",
                          "is required when a federation list path or url is set")
    if flist["path"] and flist["url"]:
        raise ConfigError("federation.federation_list", "set either path or url, not both")
    return FederationConfig(
        enabled=data["enabled"],
        allow_list=tuple(data["allow_list"]),
        list_path=resolve(flist["path"], base_dir) if flist["path"] else None,
        list_url=flist["url"],
        list_authority_key=flist["authority_key"],
        list_refresh_seconds=flist["refresh_seconds"],
        pinned_keys={server: dict(keys) for server, keys in pinned.items()},
        allow_private_addresses=data["allow_private_addresses"],
        verify_tls=data["verify_tls"],
    )


def _tag_names(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a list of tag names, got {value!r}")
    for index, name in enumerate(value):
        if not isinstance(name, str) or not TAG_NAME.fullmatch(name):
            raise ConfigError(f"{key}[{index}]", "expected a tag name (lower case letters,"
                              f" digits, '_', '-', '.'; at most 64), got {name!r}")
    return tuple(value)


def _parse_tags(data: dict[str, Any]) -> TagsConfig:
    organisations = {}
    for org_id, names in data["organisations"].items():
        organisations[str(org_id)] = _tag_names(f"tags.organisations.{org_id}", names)
    auto = data["auto_delete"]
    if not auto["min_seconds"] <= auto["default_seconds"] <= auto["max_seconds"]:
        raise ConfigError("tags.auto_delete", "expected min_seconds <= default_seconds <="
                          f" max_seconds, got {auto['min_seconds']}, {auto['default_seconds']},"
                          f" {auto['max_seconds']}")
    return TagsConfig(
        custom=_tag_names("tags.custom", data["custom"]), organisations=organisations,
        auto_delete_default_ms=auto["default_seconds"] * 1000,
        auto_delete_min_ms=auto["min_seconds"] * 1000,
        auto_delete_max_ms=auto["max_seconds"] * 1000,
        auto_delete_check_seconds=auto["check_seconds"], auto_delete_batch=auto["batch"])


# A duration with its unit: milliseconds, seconds, minutes, hours, days, weeks, years.
_DURATION = re.compile(r"(\d+)\s*(ms|s|m|h|d|w|y)?")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 7 * 86_400_000, "y": 365 * 86_400_000}


def parse_duration(key: str, value: int | str) -> int:
    """A duration in milliseconds from an integer (milliseconds) or a string such as ``30s``,
    ``12h`` or ``90d``; ConfigError naming ``key`` for anything else or a duration of 0."""
    if isinstance(value, int):
        ms = value
    else:
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ConfigError(key, "expected a duration such as 30s, 12h, 90d or a number of"
                              f" milliseconds, got {value!r}")
        ms = int(match.group(1)) * _UNIT_MS[match.group(2) or "ms"]
    if ms < 1:
        raise ConfigError(key, f"expected a duration of at least 1 ms, got {value!r}")
    return ms


def _parse_retention(data: dict[str, Any]) -> RetentionSettings:
    def duration(name: str, value: int | str | None) -> int | None:
        return None if value is None else parse_duration(f"retention.{name}", value)

    low = duration("allowed_lifetime_min", data["allowed_lifetime_min"])
    high = duration("allowed_lifetime_max", data["allowed_lifetime_max"])
    if low is not None and high is not None and low > high:
        raise ConfigError("retention", "expected allowed_lifetime_min <= allowed_lifetime_max,"
                          f" got {data['allowed_lifetime_min']!r} and"
                          f" {data['allowed_lifetime_max']!r}")
    purge = parse_duration("retention.purge_interval", data["purge_interval"])
    if purge < 1000:
        raise ConfigError("retention.purge_interval",
                          f"expected at least 1s, got {data['purge_interval']!r}")
    return RetentionSettings(
        enabled=data["enabled"],
        default_max_lifetime_ms=duration("default_policy.max_lifetime",
                                         data["default_policy"]["max_lifetime"]),
        min_lifetime_ms=low, max_lifetime_ms=high, purge_interval_ms=purge,
        federation_queue_max_age_ms=parse_duration("retention.federation_queue_max_age",
                                                   data["federation_queue_max_age"]),
        deactivated_account_data_ms=duration("deactivated_account_data",
                                             data["deactivated_account_data"]))


def _parse_validity(data: dict[str, Any]) -> ValiditySettings:
    if not data["enabled"]:
        return ValiditySettings()
    if data["period"] is None:
        raise ConfigError("account_validity.period", "is required when enabled")
    renew_before = data["renew_before"]
    return ValiditySettings(True, parse_duration("account_validity.period", data["period"]),
                            None if renew_before is None else
                            parse_duration("account_validity.renew_before", renew_before))


def _parse_listeners(items: list[dict[str, Any]], resolve: Any, base_dir: Path
                     ) -> list[Listener]:
    listeners = []
    for index, item in enumerate(items):
        tls = item["tls"]
        if bool(tls["certificate"]) != bool(tls["private_key"]):
            raise ConfigError(f"listeners[{index}].tls",
                              "needs both certificate and private_key, or neither")
        listeners.append(Listener(
            port=item["port"],
            bind_address=item["bind_address"],
            resources=tuple(item["resources"] or DEFAULT_LISTENER_RESOURCES),
            tls_certificate=resolve(tls["certificate"], base_dir) if tls["certificate"] else None,
            tls_private_key=resolve(tls["private_key"], base_dir) if tls["private_key"] else None,
        ))
    return listeners


def _parse_smtp(email: dict[str, Any], resolve: Any) -> SmtpSettings:
    smtp = email["smtp"]
    if not smtp["host"]:
        return SmtpSettings()
    if not email["from"]:
        raise ConfigError("email.from", "is required when email.smtp.host is set")
    if "@" not in email["from"] or "\n" in email["from"]:
        raise ConfigError("email.from", f"expected an email address such as"
                          f" 'gov-broker <noreply@example.gov>', got {email['from']!r}")
    if smtp["port"] > 65535:
        raise ConfigError("email.smtp.port", f"expected at most 65535, got {smtp['port']!r}")
    password = smtp["password"]
    if smtp["password_path"]:
        if password:
            raise ConfigError("email.smtp", "set either password or password_path, not both")
        path = resolve(smtp["password_path"], Path())
        try:
            password = path.read_text().strip()
        except OSError as e:
            raise ConfigError("email.smtp.password_path",
                              f"cannot read {path}: {e.strerror}") from e
    if bool(smtp["username"]) != bool(password):
        raise ConfigError("email.smtp", "needs both username and password (or"
                          " password_path), or neither")
    return SmtpSettings(
        host=smtp["host"], port=smtp["port"] or SMTP_PORTS[smtp["tls"]], tls=smtp["tls"],
        username=smtp["username"], password=password, from_address=email["from"],
        timeout_seconds=smtp["timeout_seconds"], concurrency=smtp["concurrency"],
        queue_limit=smtp["queue_limit"])


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a config file; every failure is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError("", f"config file {path} is not valid YAML: {e}") from e
    return parse_config(raw, path.resolve().parent)
