"""``broker broadcasts send|list|show``: the admin API's broadcasts calls over the node's
database (see :mod:`broker.admin.commands`), acting with node-wide authority as
``command:<login>``.  A broadcast sent by the command is recorded with its recipients; the
running node finds it in its change feed within a second and reaches them (or at its next
start).  ``show`` reads the sync progress the node has written (at most a second behind)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from broker.admin.commands import AdminSession, _run, command_actor
from broker.admin.model import Actor
from broker.broadcasts.service import Broadcasts
from broker.clock import real_clock
from broker.config import NodeConfig
from broker.errors import DomainError
from broker.org_accounts import OrganisationAccounts
from storage.broadcasts import BroadcastRow, BroadcastStore
from storage.database import fired_result
from storage.organisation_accounts import OrganisationAccountStore
from storage.sync_progress import SyncProgressStore

Call = Callable[[Broadcasts, Actor], Coroutine[Any, Any, dict[str, Any]]]


def _left_to_the_node(row: BroadcastRow) -> None:
    """The running node reaches the recipients (its change feed names the broadcast)."""


def _broadcasts(session: AdminSession, config: NodeConfig) -> Broadcasts:
    """The service over the node's database (the organisations' accounts and the users'
    sync progress as the node wrote them)."""
    clock = real_clock()
    accounts = OrganisationAccounts(OrganisationAccountStore(session.db), config.server_name,
                                    clock)
    _run(accounts.load())
    synced: dict[str, int] = fired_result(SyncProgressStore(session.db).load())
    return Broadcasts(session.services.authority, session.services.audit,
                      BroadcastStore(session.db), _left_to_the_node, accounts,
                      lambda user_id: synced.get(user_id, 0), clock)


def _broadcasts_call(config: NodeConfig, command: str, call: Call) -> int:
    """Run ``call`` over the node's database and print its answer as JSON; 1 on a refusal
    (its reason printed)."""
    session = AdminSession(config)
    try:
        answer = _run(call(_broadcasts(session, config), command_actor()))
        _run(session.services.audit.sign_head())
    except DomainError as e:
        print(f"broker broadcasts {command}: {e.message}", file=sys.stderr)
        return 1
    finally:
        session.close()
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


def broadcasts_send(config: NodeConfig, organisation: str, body: str, fmt: str | None,
                    audience: str | None) -> int:
    request: dict[str, Any] = {"organisation": organisation, "body": body}
    if fmt is not None:
        request["format"] = fmt
    if audience is not None:
        try:
            request["audience"] = json.loads(audience)
        except ValueError:
            print("broker broadcasts send: --audience must be a JSON object", file=sys.stderr)
            return 2
    return _broadcasts_call(config, "send", lambda b, actor: b.send(actor, request))


def add_broadcasts_commands(sub: Any, load: Callable[[str], NodeConfig]) -> None:
    """The ``broker broadcasts`` sub-commands (``load`` reads the node's config)."""
    parser = sub.add_parser("broadcasts", help="broadcasts to an organisation's members:"
                                               " send, list, show")
    commands = parser.add_subparsers(dest="broadcasts_command", required=True)
    send = commands.add_parser("send", help="send a message to chosen members of an"
                                            " organisation (its running node delivers it)")
    send.add_argument("--organisation", required=True)
    send.add_argument("--body", required=True, help="the message")
    send.add_argument("--format", default=None, choices=["text", "html"])
    send.add_argument("--audience", default=None,
                      help='a JSON object: {"organisations", "designations", "roles",'
                           ' "users"} (default: the whole sub-tree)')
    send.set_defaults(func=lambda a: broadcasts_send(load(a.config), a.organisation, a.body,
                                                     a.format, a.audience))
    listed = commands.add_parser("list", help="the newest broadcasts")
    listed.add_argument("--organisation", default=None, help="only this sub-tree's")
    listed.add_argument("--limit", type=int, default=100)
    listed.set_defaults(func=lambda a: _broadcasts_call(
        load(a.config), "list", lambda b, actor: b.listing(actor, a.organisation, None,
                                                           max(1, min(a.limit, 1000)))))
    show = commands.add_parser("show", help="a broadcast's progress, delivered, read and"
                                            " unread")
    show.add_argument("broadcast_id")
    show.set_defaults(func=lambda a: _broadcasts_call(
        load(a.config), "show", lambda b, actor: b.show(actor, a.broadcast_id)))
    for command in (send, listed, show):
        command.add_argument("--config", "-c", default="homeserver.yaml")
