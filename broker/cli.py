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

    from broker.node import Node

    try:
        node = Node(config, reactor)
        node.setup()
    except ConfigError as e:
        print(f"ConfigError: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"broker run: cannot start: {e}", file=sys.stderr)
        return 1
    exit_code = [0]

    async def boot() -> None:
        await node.start()
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except _ConfigFailed:
        return 2


if __name__ == "__main__":
    sys.exit(main())
