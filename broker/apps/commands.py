"""``broker apps register|update|list|rotate-token|revoke``: the admin API's apps calls over the
node's database (see :mod:`broker.admin.commands`), acting with node-wide authority as
``command:<login>``.  A running node takes their changes in within a second, through the
audit log (:meth:`broker.apps.registry.Apps.changes_seen`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from broker.admin.commands import AdminSession, _run, command_actor
from broker.admin.model import Actor
from broker.apps.callback_urls import check_callback_url
from broker.apps.registry import Apps
from broker.clock import real_clock
from broker.config import NodeConfig
from broker.errors import DomainError
from storage.apps import AppStore

AppCall = Callable[[Apps, Actor], Coroutine[Any, Any, dict[str, Any]]]


def _apps_call(config: NodeConfig, command: str, call: AppCall) -> int:
    """Run ``call`` over the node's database and print its answer as JSON (the token and
    callback secret of a registration or rotation are shown this once); 1 on a refusal."""
    session = AdminSession(config)
    services = session.services

    async def check_url(url: str) -> None:
        await check_callback_url(url, config.apps.allow_private_callbacks)

    apps = Apps(AppStore(session.db), session.stores.accounts, services.authority,
                services.audit, services.classes, services.reachability,
                real_clock(), config.server_name, check_url)
    try:
        _run(apps.load())
        answer = _run(call(apps, command_actor()))
        _run(services.audit.sign_head())
    except DomainError as e:
        print(f"broker apps {command}: {e.message}", file=sys.stderr)
        return 1
    finally:
        session.close()
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


def apps_register(config: NodeConfig, name: str, organisation: str,
                  callback_url: str | None, kinds: list[str] | None) -> int:
    body: dict[str, Any] = {"name": name, "organisation": organisation}
    if callback_url is not None:
        body["callback_url"] = callback_url
    if kinds is not None:
        body["kinds"] = kinds
    return _apps_call(config, "register", lambda apps, actor: apps.register(actor, body))


def apps_list(config: NodeConfig, organisation: str | None) -> int:
    return _apps_call(config, "list", lambda apps, actor: apps.list(actor, organisation))


def apps_update(config: NodeConfig, app_id: str, callback_url: str | None,
                kinds: list[str] | None) -> int:
    """``callback_url`` "" removes the URL; None leaves it (as ``kinds`` None does)."""
    body: dict[str, Any] = {}
    if callback_url is not None:
        body["callback_url"] = callback_url or None
    if kinds is not None:
        body["kinds"] = kinds
    return _apps_call(config, "update", lambda apps, actor: apps.update(actor, app_id, body))


def apps_rotate_token(config: NodeConfig, app_id: str) -> int:
    return _apps_call(config, "rotate-token",
                      lambda apps, actor: apps.rotate_token(actor, app_id))


def apps_revoke(config: NodeConfig, app_id: str) -> int:
    return _apps_call(config, "revoke", lambda apps, actor: apps.revoke(actor, app_id))


def _kinds(text: str | None) -> list[str] | None:
    return None if text is None else [k.strip() for k in text.split(",") if k.strip()]


def add_apps_commands(sub: Any, load: Callable[[str], NodeConfig]) -> None:
    """The ``broker apps`` sub-commands (``load`` reads the node's config)."""
    apps = sub.add_parser("apps", help="eGov applications: register, list, rotate-token,"
                                       " revoke")
    apps_sub = apps.add_subparsers(dest="apps_command", required=True)
    register = apps_sub.add_parser("register", help="register an application (its token is"
                                                    " printed once)")
    register.add_argument("--name", required=True, help="the app's name (its sender's)")
    register.add_argument("--organisation", required=True, help="the organisation it serves")
    register.add_argument("--callback-url", default=None,
                          help="where delivery and read callbacks go")
    register.add_argument("--kinds", default=None,
                          help="comma-separated kinds it may send (default: otp,alert,"
                               "notification)")
    register.set_defaults(func=lambda a: apps_register(
        load(a.config), a.name, a.organisation, a.callback_url, _kinds(a.kinds)))
    update = apps_sub.add_parser("update", help="change an app's callback URL or kinds")
    update.add_argument("app_id")
    update.add_argument("--callback-url", default=None, help="the new URL ('' for none)")
    update.add_argument("--kinds", default=None, help="comma-separated kinds it may send")
    update.set_defaults(func=lambda a: apps_update(load(a.config), a.app_id, a.callback_url,
                                                   _kinds(a.kinds)))
    listed = apps_sub.add_parser("list", help="list the applications")
    listed.add_argument("--organisation", default=None,
                        help="only this organisation's sub-tree")
    listed.set_defaults(func=lambda a: apps_list(load(a.config), a.organisation))
    rotate = apps_sub.add_parser("rotate-token", help="give an app a new token (printed once;"
                                                      " the old one stops working)")
    rotate.add_argument("app_id")
    rotate.set_defaults(func=lambda a: apps_rotate_token(load(a.config), a.app_id))
    revoke = apps_sub.add_parser("revoke", help="revoke an app: its token stops working")
    revoke.add_argument("app_id")
    revoke.set_defaults(func=lambda a: apps_revoke(load(a.config), a.app_id))
    for parser in (register, update, listed, rotate, revoke):
        parser.add_argument("--config", "-c", default="homeserver.yaml")
