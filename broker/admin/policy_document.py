"""The node's effective separation policy as one document, for its admins
(``GET /_broker/admin/v1/policy``): the rules installed in the access policy with the reasons
each refuses with, the member limits, reachability, the user directory's rule, how many rooms
are shut down, profile visibility (the default and each organisation's), message tags (with
their refusals), what other nodes attest of their users (the cache time, the attestations
passed over per rule), retention (the bounds, the purge's counts), and the refusals counted
per reason (kept across restarts: :mod:`broker.refusal_counts`).

Everything is read from memory (the rules, the caches they read, the counters); reading it
needs the ``policy.read`` permission (node admins) and a refusal is recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.access_policy import UNNAMED_RULE, AccessPolicy
from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.authority import Authority
from broker.admin.model import Actor
from broker.admin.profile_visibility import ProfileVisibility
from broker.config import GroupsConfig
from broker.group_rules import DIRECT_MAX_MEMBERS

DIRECTORY_RULE = ("A public searcher finds a verified user of this node only when that user is"
                  " reachable by the public or shares a room with them")


class PolicyDocument:
    def __init__(self, policy: AccessPolicy, limits: GroupsConfig,
                 reachability: Callable[[], dict[str, Any]], visibility: ProfileVisibility,
                 shut_down: Callable[[], int], tags: Callable[[], dict[str, Any]],
                 remote_classes: Callable[[], dict[str, Any]],
                 retention: Callable[[], dict[str, Any]],
                 authority: Authority, audit: AuditLog) -> None:
        self.policy = policy
        self.retention = retention  # the retention bounds and purge counts
        self.remote_classes = remote_classes  # what other nodes attest: its summary
        self.tags = tags  # the message tags summary
        self.shut_down = shut_down  # how many rooms are shut down
        self.limits = limits
        self.reachability = reachability  # the reachability summary
        self.visibility = visibility
        self.authority = authority
        self.audit = audit

    async def read(self, actor: Actor) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.POLICY_READ):
            await self.authority.require(actor, permissions.POLICY_READ, None)
            return self.document()

    def document(self) -> dict[str, Any]:
        reasons = [r for rule in self.policy.installed for r in rule.reasons]
        counted = self.policy.refusals
        refusals = {reason: counted.get(reason, 0) for reason in reasons}
        refusals.update({k: v for k, v in sorted(counted.items()) if k not in refusals})
        if UNNAMED_RULE not in refusals:
            refusals[UNNAMED_RULE] = 0
        return {
            "rules": [rule.to_json() for rule in self.policy.installed],
            "member_limits": {"official": self.limits.official_max_members,
                              "informal": self.limits.informal_max_members,
                              "direct": DIRECT_MAX_MEMBERS},
            "reachability": self.reachability(),
            "directory": {"rule": DIRECTORY_RULE},
            "rooms_shut_down": self.shut_down(),
            "profile_visibility": self.visibility.effective(),
            "message_tags": self.tags(),
            "remote_classes": self.remote_classes(),
            "retention": self.retention(),
            "refusals": refusals,
            "refused": self.policy.refused,
        }
