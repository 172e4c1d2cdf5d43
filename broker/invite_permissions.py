"""Invite permissions a user sets for themselves: ``m.invite_permission_config`` global account
data, in the shape of MSC4155 (allow, ignore and block lists of users and servers, each entry a
glob) and the stable spec's ``default_action`` (``"block"``: no invites at all).

For an invite of one of this node's users, checked in order (MSC4155):

1. the inviter matches ``allowed_users`` or their server ``allowed_servers``: the invite goes on;
2. ``ignored_users`` / ``ignored_servers``: the invite is taken but never shown to the user
   (the inviter learns nothing);
3. ``blocked_users`` / ``blocked_servers``: refused, ``403 M_INVITE_BLOCKED``
   (``"in.gov.broker.reason": "invite_blocked"``);
4. ``default_action: "block"``: refused the same way; otherwise the invite goes on.

Clients that still write MSC4155's unstable type (``org.matrix.msc4155.invite_permission_config``)
are honoured too; a user's stable config, once written, is the one read.

This sits on top of the separation rules (an invite they refuse stays refused).  Every
user's config is held in memory (read at start, replaced on each write through the account
data service), compiled once, so the check on the invite path reads no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from broker.access_policy import Decision, InstalledRule, Refusal
from broker.errors import MalformedContent
from storage.account_data import AccountDataStore

ACCOUNT_DATA_TYPE = "m.invite_permission_config"
UNSTABLE_TYPE = "org.matrix.msc4155.invite_permission_config"
TYPES = (ACCOUNT_DATA_TYPE, UNSTABLE_TYPE)  # the first a user has decides
BLOCKED = "invite_blocked"
BLOCKED_ERRCODE = "M_INVITE_BLOCKED"
LISTS = ("allowed_users", "ignored_users", "blocked_users",
         "allowed_servers", "ignored_servers", "blocked_servers")
ALLOW, IGNORE, BLOCK = "allow", "ignore", "block"
RULE = InstalledRule(
    "invite_permissions", (BLOCKED,),
    "An invite of a user of this node that their m.invite_permission_config blocks (MSC4155"
    " lists of users and servers, or default_action block) is refused with M_INVITE_BLOCKED;"
    " one it ignores is taken but never shown")


def glob(patterns: list[str]) -> re.Pattern[str] | None:
    """One expression matching any of the spec's glob patterns (``*`` any run of characters,
    ``?`` one character, everything else itself), or None for no pattern."""
    if not patterns:
        return None
    parts = ("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
             for p in patterns)
    return re.compile("|".join(f"(?:{part})" for part in parts), re.DOTALL)


@dataclass(frozen=True)
class InviteConfig:
    """One user's config, compiled: per verdict, the users' and the servers' expressions."""

    users: dict[str, re.Pattern[str] | None]
    servers: dict[str, re.Pattern[str] | None]
    block_by_default: bool

    def verdict(self, inviter: str) -> str:
        server = inviter.partition(":")[2]
        for verdict in (ALLOW, IGNORE, BLOCK):
            users, servers = self.users[verdict], self.servers[verdict]
            if (users is not None and users.fullmatch(inviter)) or \
                    (servers is not None and servers.fullmatch(server)):
                return verdict
        return BLOCK if self.block_by_default else ALLOW


def config_of(content: dict[str, Any]) -> InviteConfig:
    """The config an account data content sets; MalformedContent for a list that is not a
    list of strings (a missing or null list is empty)."""
    lists: dict[str, list[str]] = {}
    for name in LISTS:
        value = content.get(name)
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MalformedContent(f"{ACCOUNT_DATA_TYPE}: '{name}' must be a list of strings")
        lists[name] = value
    verdicts = {ALLOW: "allowed", IGNORE: "ignored", BLOCK: "blocked"}
    return InviteConfig(
        users={v: glob(lists[f"{word}_users"]) for v, word in verdicts.items()},
        servers={v: glob(lists[f"{word}_servers"]) for v, word in verdicts.items()},
        block_by_default=content.get("default_action") == "block")


class ConfigsOfType:
    """The account data watcher of one of :data:`TYPES`: every user's config of that type."""

    def __init__(self) -> None:
        self.configs: dict[str, InviteConfig] = {}

    def check(self, content: dict[str, Any]) -> None:
        config_of(content)

    def written(self, user_id: str, content: dict[str, Any]) -> None:
        self.configs[user_id] = config_of(content)


class InvitePermissions:
    def __init__(self, store: AccountDataStore) -> None:
        self.store = store
        self.watchers = {data_type: ConfigsOfType() for data_type in TYPES}

    async def load(self) -> None:
        """Read every user's configs (at start); one the node cannot read lets invites in."""
        for data_type, watcher in self.watchers.items():
            configs: dict[str, InviteConfig] = {}
            for user_id, content in (await self.store.global_of_type(data_type)).items():
                try:
                    configs[user_id] = config_of(content if isinstance(content, dict) else {})
                except MalformedContent:
                    continue
            watcher.configs = configs

    def forget(self, user_id: str) -> None:
        """The user's account data was deleted (a deactivated account's data)."""
        for watcher in self.watchers.values():
            watcher.configs.pop(user_id, None)

    # -- decisions -----------------------------------------------------------------------------
    def verdict(self, invitee: str, inviter: str) -> str:
        for watcher in self.watchers.values():
            config = watcher.configs.get(invitee)
            if config is not None:
                return config.verdict(inviter)
        return ALLOW

    def ignores(self, invitee: str, inviter: str) -> bool:
        """Whether ``invitee`` ignores invites from ``inviter`` (taken, never shown)."""
        return self.verdict(invitee, inviter) == IGNORE

    def rule(self, decision: Decision) -> Refusal | None:
        """The access policy rule: an invite the invitee blocks is refused."""
        if decision.action != "invite" or self.verdict(decision.target, decision.actor) != BLOCK:
            return None
        return Refusal(BLOCKED, f"{decision.target} does not take invites from"
                       f" {decision.actor}", errcode=BLOCKED_ERRCODE)
