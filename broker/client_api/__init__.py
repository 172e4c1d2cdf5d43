"""The Client-Server API: one module per area, each declaring an :class:`Endpoints` group.

:func:`client_endpoints` is the list the node serves, in order; each group gets the services it
needs from the composition root (:mod:`broker.node`) and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.http.endpoint import Endpoints
    from broker.node import Node

CLIENT_PREFIX = "/_matrix/client/(?:v3|r0)"
CLIENT_V1_PREFIX = "/_matrix/client/v1"


def client_endpoints(node: Node) -> list[Endpoints]:
    return [*_account_endpoints(node), *_room_endpoints(node)]


def _account_endpoints(node: Node) -> list[Endpoints]:
    """Accounts, devices, end-to-end encryption, filters, push rules, media."""
    from broker.client_api.account import AccountEndpoints
    from broker.client_api.account_data import AccountDataEndpoints
    from broker.client_api.appservice import AppServicePingEndpoints
    from broker.client_api.capabilities import CapabilityEndpoints
    from broker.client_api.cross_signing import CrossSigningEndpoints
    from broker.client_api.devices import DeviceEndpoints
    from broker.client_api.filters import FilterEndpoints
    from broker.client_api.health import HealthEndpoints
    from broker.client_api.keys import KeyEndpoints
    from broker.client_api.login import LoginEndpoints
    from broker.client_api.media import MediaEndpoints
    from broker.client_api.password_email import PasswordEmailEndpoints
    from broker.client_api.push_rules import PushRuleEndpoints
    from broker.client_api.register import RegisterEndpoints
    from broker.client_api.room_keys import KeyBackupEndpoints
    from broker.client_api.tags import TagEndpoints
    from broker.client_api.to_device import ToDeviceEndpoints
    from broker.client_api.versions import VersionEndpoints

    return [
        AccountDataEndpoints(node.account_data),
        TagEndpoints(node.account_data),
        VersionEndpoints(),
        HealthEndpoints(node.health),
        CapabilityEndpoints(node.config.default_room_version, node.retention.capability()),
        LoginEndpoints(node.credentials, node.accounts, node.app_services),
        RegisterEndpoints(node.accounts, node.uia, node.app_services),
        AppServicePingEndpoints(node.app_services, node.app_service_client),
        AccountEndpoints(node.accounts, node.uia, node.password_by_email, node.mailer.enabled),
        PasswordEmailEndpoints(node.password_by_email, node.config.public_baseurl),
        DeviceEndpoints(node.devices, node.uia),
        FilterEndpoints(node.filters),
        ToDeviceEndpoints(node.to_device),
        KeyEndpoints(node.e2ee_keys),
        CrossSigningEndpoints(node.e2ee_keys, node.uia),
        MediaEndpoints(node.media, node.config.max_upload_bytes, node.remote_media),
        PushRuleEndpoints(node.push_rules),
        KeyBackupEndpoints(node.key_backups),
    ]


def _room_endpoints(node: Node) -> list[Endpoints]:
    """Rooms: events, membership, messages, directory, receipts, typing, sync."""
    from broker.client_api.directory import DirectoryEndpoints
    from broker.client_api.messages import HistoryEndpoints
    from broker.client_api.profile import ProfileEndpoints
    from broker.client_api.receipts import ReceiptEndpoints
    from broker.client_api.relations import RelationEndpoints
    from broker.client_api.reports import ReportEndpoints
    from broker.client_api.room_events import RoomEventEndpoints
    from broker.client_api.rooms import RoomMembershipEndpoints
    from broker.client_api.sync import SyncEndpoints
    from broker.client_api.typing import TypingEndpoints
    from broker.client_api.user_directory import UserDirectoryEndpoints
    from broker.filtering import CachedFilters

    return [
        RoomEventEndpoints(node.room_events),
        RoomMembershipEndpoints(node.room_creation, node.membership, node.rooms.user_rooms,
                                node.config.default_room_version),
        ReceiptEndpoints(node.receipts),
        TypingEndpoints(node.typing_service),
        SyncEndpoints(node.sync, CachedFilters(node.stores.filters)),
        ReportEndpoints(node.reports),
        ProfileEndpoints(node.profiles),
        UserDirectoryEndpoints(node.user_directory),
        HistoryEndpoints(node.history),
        RelationEndpoints(node.relations),
        DirectoryEndpoints(node.directory),
    ]
