"""The ``broker`` console command: ``init``, ``run`` and account administration.

    broker init --server-name example.gov [--port 8008] [--config homeserver.yaml]
    broker run --config homeserver.yaml
    broker user add --config homeserver.yaml --user alice [--password ...] [--admin]
    broker orgs import FILE.yaml --config homeserver.yaml
    broker users import FILE.csv --config homeserver.yaml
    broker users verify USER --organisation ORG --basis B [--expires DATE] --config ...
    broker users revoke USER --config homeserver.yaml
    broker roles grant|revoke --config homeserver.yaml --user alice --role R [--organisation O]
    broker audit verify --config homeserver.yaml
    broker apps register --name N --organisation ORG [--callback-url U] [--kinds K,K] --config ...
    broker apps update APP [--callback-url U] [--kinds K,K] | list | rotate-token APP | revoke APP
    broker broadcasts send --organisation ORG --body TEXT [--audience JSON] | list | show ID
    broker keys at-rest generate --config homeserver.yaml [--out FILE]
    broker keys at-rest rotate --config homeserver.yaml [--batch N]
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer

from broker.config import ConfigError, NodeConfig, load_config
from broker.init_config import write_initial_config


def _cmd_init(args: argparse.Namespace) -> int:
    try:
        written = write_initial_config(
            config_path=Path(args.config),
            server_name=args.server_name,
            port=args.port,
            bind_address=args.bind_address,
            data_dir=args.data_dir,
            database_engine=args.database,
            database_dsn=args.dsn,
            enable_registration=args.enable_registration,
            overwrite=args.force,
            federation_port=args.federation_port,
            tls_self_signed=args.tls_self_signed,
        )
    except FileExistsError as e:
        print(f"broker init: {e} exists; pass --force to overwrite it", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


class _ConfigFailed(Exception):
    """The config could not be loaded; the reason was printed."""


def _load(path: str) -> NodeConfig:
    try:
        return load_config(path)
    except ConfigError as e:
        print(f"ConfigError: {e}", file=sys.stderr)
        raise _ConfigFailed from e


def _cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Twisted's own messages (an unhandled error in a Deferred, say) go to the same log;
    # without an observer Twisted keeps them in memory and nobody sees them.
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    observer: Any = STDLibLogObserver(name="twisted")
    globalLogBeginner.beginLoggingTo([observer],
                                     redirectStandardIO=False)
    from twisted.internet import reactor as default_reactor

    reactor: Any = default_reactor

    from broker.gc_tuning import DEFAULT_THRESHOLDS, GcTuning
    from broker.node import Node

    node: Node | None = None
    try:
        node = Node(config, reactor)
        node.setup()
    except Exception as e:
        if node is not None:
            node.db.close()  # its pool's threads would keep the process from exiting
        if isinstance(e, ConfigError):
            print(f"ConfigError: {e}", file=sys.stderr)
            return 2
        print(f"broker run: cannot start: {e}", file=sys.stderr)
        return 1
    exit_code = [0]

    async def boot() -> None:
        await node.start()
        if config.gc.tuned:  # the process's collector: a node serving, not tests
            gc = config.gc
            tuning = GcTuning(reactor, (gc.young_threshold, *DEFAULT_THRESHOLDS[1:]),
                              gc.full_collection_seconds, gc.full_collection_growth)
            tuning.start()
            reactor.addSystemEventTrigger("before", "shutdown", tuning.stop)
        node.listen()
        print(f"broker: node {config.server_name} is running", flush=True)
        if args.ready_fd is not None:
            _signal_ready(args.ready_fd)

    def failed(failure: Any) -> None:
        if failure.check(ConfigError):
            print(f"ConfigError: {failure.getErrorMessage()}", file=sys.stderr)
            exit_code[0] = 2
        else:
            print(f"broker run: cannot start: {failure.getErrorMessage()}", file=sys.stderr)
            exit_code[0] = 1
        reactor.stop()

    reactor.callWhenRunning(
        lambda: defer.ensureDeferred(boot()).addErrback(failed))
    reactor.run()
    return exit_code[0]


def _signal_ready(fd: int) -> None:
    """Tell whoever started the node that it listens: a line on ``fd``, which is then closed
    (a supervisor or test waits on a blocking read instead of polling the port)."""
    with open(fd, "w", closefd=True) as ready:
        ready.write("ready\n")


def _cmd_user_add(args: argparse.Namespace) -> int:
    from broker.admin_tools import create_account
    from broker.clock import real_clock

    config = _load(args.config)
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
    try:
        user_id = create_account(config, args.user, password, admin=args.admin,
                                 now_ms=real_clock().time_ms())
    except ValueError as e:
        print(f"broker user add: {e}", file=sys.stderr)
        return 1
    print(f"created {user_id}")
    return 0


def _cmd_orgs_import(args: argparse.Namespace) -> int:
    from broker.admin.commands import orgs_import

    return orgs_import(_load(args.config), Path(args.file))


def _cmd_roles(args: argparse.Namespace) -> int:
    from broker.admin.commands import roles_change

    return roles_change(_load(args.config), args.user, args.role, args.organisation,
                        grant=args.roles_command == "grant")


def _cmd_users_import(args: argparse.Namespace) -> int:
    from broker.admin.commands import users_import

    return users_import(_load(args.config), Path(args.file))


def _cmd_users_verify(args: argparse.Namespace) -> int:
    from broker.admin.commands import users_verify

    return users_verify(_load(args.config), args.user, args.organisation, args.basis,
                        args.expires)


def _cmd_users_revoke(args: argparse.Namespace) -> int:
    from broker.admin.commands import users_revoke

    return users_revoke(_load(args.config), args.user)


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from broker.admin.commands import audit_verify

    return audit_verify(_load(args.config))


def _cmd_at_rest_generate(args: argparse.Namespace) -> int:
    from broker.at_rest_keys import write_key_file
    from storage.at_rest import DataKey

    config = _load(args.config)
    path = Path(args.out) if args.out else config.at_rest_key_file
    if path is None:
        print("broker keys at-rest generate: set at_rest.key_file in the config or pass --out",
              file=sys.stderr)
        return 1
    key = DataKey.generate()
    try:
        write_key_file(path, [key], replace=False)
    except FileExistsError:
        print(f"broker keys at-rest generate: {path} exists; to change keys, use"
              " 'broker keys at-rest rotate'", file=sys.stderr)
        return 1
    print(f"wrote key {key.key_id} to {path} (mode 0600): back it up; without it the data"
          " sealed with it cannot be read")
    return 0


def _cmd_at_rest_rotate(args: argparse.Namespace) -> int:
    import time

    from broker.admin_tools import open_database
    from broker.at_rest_rotate import AtRestRotation
    from broker.clock import real_clock
    from broker.media.files import MediaFiles

    config = _load(args.config)
    if config.at_rest_key_file is None:
        print("broker keys at-rest rotate: rotation needs at_rest.key_file (a key given in"
              " BROKER_AT_REST_KEY cannot be replaced while the node runs)", file=sys.stderr)
        return 1
    try:
        db = open_database(config)
    except ConfigError as e:
        print(f"ConfigError: {e}", file=sys.stderr)
        return 2
    try:
        clock = real_clock()
        done = AtRestRotation(
            db, config.at_rest_key_file, MediaFiles(config.media_store_path, db.at_rest),
            now_ms=clock.time_ms, sleep=time.sleep, report=lambda line: print(line, flush=True),
            batch=args.batch).run()
    except (OSError, ValueError) as e:
        print(f"broker keys at-rest rotate: {e}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"rotation to key {done.rotation.target_key_id} done: {done.resealed} records and"
          f" files re-sealed; retired {', '.join(done.retired_key_ids) or 'no key'}")
    return 0


def _add_keys_commands(sub: Any) -> None:
    keys = sub.add_parser("keys", help="the node's keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    at_rest = keys_sub.add_parser("at-rest", help="data keys for encryption at rest")
    at_rest_sub = at_rest.add_subparsers(dest="at_rest_command", required=True)
    generate = at_rest_sub.add_parser("generate", help="write a new key file (mode 0600)")
    generate.add_argument("--config", "-c", default="homeserver.yaml")
    generate.add_argument("--out", help="where to write it (default: at_rest.key_file)")
    generate.set_defaults(func=_cmd_at_rest_generate)
    rotate = at_rest_sub.add_parser(
        "rotate", help="re-seal all data under a new key (resumable; the node may run)")
    rotate.add_argument("--config", "-c", default="homeserver.yaml")
    rotate.add_argument("--batch", type=int, default=500, help="rows per transaction")
    rotate.set_defaults(func=_cmd_at_rest_rotate)


def _add_admin_commands(sub: Any) -> None:
    orgs = sub.add_parser("orgs", help="manage organisations")
    orgs_sub = orgs.add_subparsers(dest="orgs_command", required=True)
    imported = orgs_sub.add_parser(
        "import", help="create or update the organisations a YAML file names (all or nothing)")
    imported.add_argument("file", help="a YAML file like config/organisations.yaml")
    imported.add_argument("--config", "-c", default="homeserver.yaml")
    imported.set_defaults(func=_cmd_orgs_import)

    _add_users_commands(sub)

    roles = sub.add_parser("roles", help="grant and revoke admin roles")
    roles_sub = roles.add_subparsers(dest="roles_command", required=True)
    for name, text in (("grant", "grant a role"), ("revoke", "revoke a role")):
        change = roles_sub.add_parser(name, help=text)
        change.add_argument("--config", "-c", default="homeserver.yaml")
        change.add_argument("--user", required=True, help="localpart or full user ID")
        change.add_argument("--role", required=True,
                            help="node_admin, org_admin, verifier, broadcaster, auditor or"
                                 " app_manager")
        change.add_argument("--organisation", default=None,
                            help="the organisation whose sub-tree the grant covers (omit for"
                                 " the whole node)")
        change.set_defaults(func=_cmd_roles)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verified = audit_sub.add_parser(
        "verify", help="check the audit log's hash chain and signatures")
    verified.add_argument("--config", "-c", default="homeserver.yaml")
    verified.set_defaults(func=_cmd_audit_verify)


def _add_users_commands(sub: Any) -> None:
    users = sub.add_parser("users", help="government accounts: import, verify, revoke")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    imported = users_sub.add_parser(
        "import", help="create the accounts a CSV file lists (all or nothing)")
    imported.add_argument("file", help="CSV with the header localpart,name,organisation,"
                                       "designation,employee_id,email,phone,class")
    imported.add_argument("--config", "-c", default="homeserver.yaml")
    imported.set_defaults(func=_cmd_users_import)
    verify = users_sub.add_parser("verify", help="verify a user for an organisation")
    verify.add_argument("user", help="localpart or full user ID")
    verify.add_argument("--config", "-c", default="homeserver.yaml")
    verify.add_argument("--organisation", required=True,
                        help="the organisation the user is verified for")
    verify.add_argument("--basis", required=True,
                        help="document, official_email, in_person or import")
    verify.add_argument("--expires", default=None,
                        help="when the verification ends: 2027-03-31 (midnight UTC) or"
                             " 2027-03-31T18:00:00+05:30")
    verify.set_defaults(func=_cmd_users_verify)
    revoke = users_sub.add_parser("revoke", help="revoke a user's verification")
    revoke.add_argument("user", help="localpart or full user ID")
    revoke.add_argument("--config", "-c", default="homeserver.yaml")
    revoke.set_defaults(func=_cmd_users_revoke)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="write a node config, a signing key and a data folder")
    init.add_argument("--server-name", required=True, help="the node's server name")
    init.add_argument("--config", default="homeserver.yaml", help="config file to write")
    init.add_argument("--port", type=int, default=8008, help="client/federation HTTP port")
    init.add_argument("--bind-address", default="127.0.0.1")
    init.add_argument("--data-dir", default="data", help="relative to the config file")
    init.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    init.add_argument("--dsn", default="", help="PostgreSQL DSN when --database postgres")
    init.add_argument("--enable-registration", action="store_true",
                      help="allow anyone to register an account")
    init.add_argument("--force", action="store_true", help="overwrite an existing config")
    init.add_argument("--federation-port", type=int, default=None,
                      help="serve the Server-Server API over TLS on this port (e.g. 8448)")
    init.add_argument("--tls-self-signed", action="store_true",
                      help="make a self-signed certificate for the federation port (development)")
    init.set_defaults(func=_cmd_init)

    run = sub.add_parser("run", help="start the node")
    run.add_argument("--config", "-c", default="homeserver.yaml")
    run.add_argument("--ready-fd", type=int, default=None,
                     help="write a line to this inherited file descriptor once listening")
    run.set_defaults(func=_cmd_run)

    user = sub.add_parser("user", help="manage accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create an account")
    add.add_argument("--config", "-c", default="homeserver.yaml")
    add.add_argument("--user", required=True, help="localpart or full user ID")
    add.add_argument("--password", help="prompted for when omitted")
    add.add_argument("--admin", action="store_true", help="make the account a node admin")
    add.set_defaults(func=_cmd_user_add)
    _add_admin_commands(sub)
    _add_keys_commands(sub)
    from broker.apps.commands import add_apps_commands

    add_apps_commands(sub, _load)
    from broker.broadcasts.commands import add_broadcasts_commands

    add_broadcasts_commands(sub, _load)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except _ConfigFailed:
        return 2


if __name__ == "__main__":
    sys.exit(main())
