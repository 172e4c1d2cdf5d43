"""``GET /capabilities``: what this node lets clients do (room versions, profile and password
changes, the retention bounds; third-party identifiers are not managed here)."""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.retention import CAPABILITY as RETENTION_CAPABILITY
from protocol.room_versions import KNOWN_ROOM_VERSIONS


class CapabilityEndpoints(Endpoints):
    def __init__(self, default_room_version: str, retention: dict[str, Any]) -> None:
        self.default_room_version = default_room_version
        self.retention = retention  # the node's retention bounds (broker.retention)

    @endpoint("GET", f"{CLIENT_PREFIX}/capabilities", access=Access.USER)
    async def capabilities(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"capabilities": {
            "m.change_password": {"enabled": True},
            "m.room_versions": {
                "default": self.default_room_version,
                "available": {version: "stable" for version in KNOWN_ROOM_VERSIONS},
            },
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
            # The in.gov.broker.* fields are the node's (see broker.services.profiles).
            "m.profile_fields": {"enabled": True, "allowed": ["displayname", "avatar_url"]},
            # The node enforces m.invite_permission_config (MSC4155).
            "m.invite_permission_config_enforced": {"enabled": True},
            # How long the node keeps messages: its default and bounds (docs/api/retention.md).
            RETENTION_CAPABILITY: self.retention,
        }}
