"""``broker init``: a commented node config, a signing key (0600) and a data folder."""

from __future__ import annotations

import os
from pathlib import Path

from broker.tls import generate_self_signed
from protocol.signing import generate_signing_key, write_signing_key_file

TEMPLATE = """\
# Node configuration. Every key is described in docs/config.md.
# The server name is part of every user ID and room alias on this node; it cannot change later.
server_name: "{server_name}"

# Where the node keeps its database (SQLite), signing key and media. Relative paths are relative
# to this file's folder.
data_dir: "{data_dir}"
signing_key_path: "{data_dir}/signing.key"

listeners:
{listeners}
database:
  # sqlite (embedded, the default) or postgres (production; needs dsn).
  engine: {engine}
{database_extra}
registration:
  # Open registration lets anyone create an account. Admins can always create accounts with
  # `broker user add`.
  enabled: {registration}

rooms:
  default_room_version: "12"
  # End-to-end encryption for new rooms: private (private and direct rooms), all, or off.
  encryption_by_default: private

retention:
  # Undelivered to-device messages are deleted after this many days.
  undelivered_to_device_days: 7
  # What is queued for another server that stays unreachable this long is deleted, not sent.
  federation_queue_max_age: 7d
  # Room events expire by policy (m.room.retention, else the default) once enabled; durations
  # as 30s, 12h, 90d or milliseconds. See docs/admin/retention.md.
  enabled: false
  # default_policy:
  #   max_lifetime: 90d
  # allowed_lifetime_min: 1d
  # allowed_lifetime_max: 365d
  purge_interval: 1h

limits:
  max_request_body_bytes: 1048576
  max_upload_bytes: 52428800

rate_limits:
  enabled: true
  messages: {{per_second: 20, burst: 100}}
  login: {{per_second: 0.5, burst: 10}}
  registration: {{per_second: 0.2, burst: 5}}
  # One-time codes sent by email, per address and per user.
  email_codes: {{per_second: 0.0167, burst: 3}}

password_hashing:
  # Argon2id hashes that run at once (each holds memory_cost_kib while it runs, so hashing
  # memory stays under concurrency x memory_cost_kib) and how many more may wait their turn;
  # beyond that a login, registration or password change gets 429 M_LIMIT_EXCEEDED.
  concurrency: 2
  queue_limit: 32
  memory_cost_kib: 65536
  time_cost: 3

groups:
  # The most members (joined or invited) of an official group and of an informal room; a
  # direct chat has two. See docs/admin/groups.md.
  official_max_members: 1000
  informal_max_members: 1000
  # How long what another node attests of its user (verified or public: in a membership
  # event or its answer to the user-status query) is held before it is asked again.
  remote_class_seconds: 300

tags:
  # Message tags besides confidential, priority, auto_delete, for_information and
  # action_required: the node's (anyone may use them) and each organisation's (its verified
  # members may); the bounds of an auto-delete lifetime. See docs/admin/tags.md.
  custom: []
  organisations: {{}}
  auto_delete:
    default_seconds: 86400
    min_seconds: 60
    max_seconds: 2592000

audit:
  # The head of the audit log's hash chain is signed with the node's key this often (and on
  # shutdown); see docs/admin/organisations.md.
  sign_interval_seconds: 300

# email:
#   # Email the node sends itself: one-time codes for verification by official email and for
#   # a first (or forgotten) password. Without smtp.host the node sends no email and those
#   # requests are refused. See docs/config.md.
#   from: "gov-broker <noreply@example.gov>"
#   smtp:
#     host: smtp.example.gov
#     port: 0              # 0: the usual port of the TLS mode (25, 587, 465)
#     tls: starttls        # none, starttls or tls
#     username: broker
#     password_path: smtp-password.txt   # or password: "..."
#     timeout_seconds: 30
#     concurrency: 2       # emails sent at once (off the reactor thread)
#     queue_limit: 32      # more waiting; beyond that 429 M_LIMIT_EXCEEDED
#   codes:
#     lifetime_seconds: 900
#     max_attempts: 5

# organisations:
#   # A YAML file of organisations (like config/organisations.yaml), applied at start when its
#   # content changed; changes made through the admin API are kept.
#   path: organisations.yaml

# metrics:
#   # Prometheus metrics at /metrics on a listener of their own (off without a port); keep it
#   # to your monitoring network. See docs/admin/metrics.md.
#   port: 9101
#   bind_address: 127.0.0.1

logging:
  level: INFO
"""


def write_initial_config(
    *,
    config_path: Path,
    server_name: str,
    port: int,
    bind_address: str,
    data_dir: str,
    database_engine: str,
    database_dsn: str,
    enable_registration: bool,
    overwrite: bool,
    federation_port: int | None = None,
    tls_self_signed: bool = False,
) -> list[Path]:
    """Write config, data folder and signing key; returns the paths written."""
    if config_path.exists() and not overwrite:
        raise FileExistsError(str(config_path))
    if database_engine == "postgres":
        if not database_dsn:
            raise ValueError("--dsn is required with --database postgres")
        database_extra = f'  dsn: "{database_dsn}"\n'
    else:
        database_extra = f'  path: "{data_dir}/broker.db"\n'
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(
        TEMPLATE.format(
            server_name=server_name,
            data_dir=data_dir,
            listeners=_listeners(port, bind_address, federation_port, data_dir),
            engine=database_engine,
            database_extra=database_extra,
            registration="true" if enable_registration else "false",
        )
    )
    written = [config_path]
    data_path = Path(data_dir)
    if not data_path.is_absolute():
        data_path = config_path.parent / data_path
    data_path.mkdir(parents=True, exist_ok=True)
    os.chmod(data_path, 0o700)
    if federation_port is not None and tls_self_signed:
        cert, key = data_path / "tls.crt", data_path / "tls.key"
        if not cert.exists():
            generate_self_signed(cert, key, server_name.rsplit(":", 1)[0].strip("[]"))
            written += [cert, key]
    key_path = data_path / "signing.key"
    if not key_path.exists():
        write_signing_key_file(key_path, generate_signing_key())
        written.append(key_path)
    written.insert(1, data_path)
    return written


def _listeners(port: int, bind_address: str, federation_port: int | None, data_dir: str) -> str:
    if federation_port is None:
        return (f"  - port: {port}\n    bind_address: \"{bind_address}\"\n"
                "    resources: [client, federation, media]\n")
    return (
        f"  - port: {port}\n    bind_address: \"{bind_address}\"\n"
        "    resources: [client, media]\n"
        f"  # The Server-Server API, over TLS. Other servers reach it at the server name's port.\n"
        f"  - port: {federation_port}\n    bind_address: \"{bind_address}\"\n"
        "    resources: [federation]\n"
        f"    tls:\n      certificate: \"{data_dir}/tls.crt\"\n"
        f"      private_key: \"{data_dir}/tls.key\"\n")
