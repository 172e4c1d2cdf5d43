"""All stores over one Database, built once by the node (one attribute per store)."""

from __future__ import annotations

from storage.account_data import AccountDataStore
from storage.account_validity import AccountValidityStore
from storage.accounts import AccountStore
from storage.aliases import AliasStore
from storage.attested_users import AttestedUserStore
from storage.audit import AuditStore
from storage.cross_signing import CrossSigningStore
from storage.database import Database
from storage.deactivated_data import DeactivatedDataStore
from storage.device_keys import DeviceKeyStore
from storage.email_codes import EmailCodeStore
from storage.event_expiry import EventExpiryStore
from storage.events import EventStore
from storage.federation_queue import FederationQueueStore
from storage.filters import FilterStore
from storage.image_packs import ImagePackStore
from storage.key_backup import KeyBackupStore
from storage.media import MediaStore
from storage.media_references import MediaDeletionStore
from storage.organisation_accounts import OrganisationAccountStore
from storage.organisations import OrganisationStore
from storage.push_rules import PushRuleStore
from storage.reachability import ReachabilityStore
from storage.receipts import ReceiptStore
from storage.refusal_counts import RefusalCountStore
from storage.remote_invites import RemoteInviteStore
from storage.remote_knocks import RemoteKnockStore
from storage.reports import ReportStore
from storage.retention import RetentionStore
from storage.roles import RoleStore
from storage.room_admin import RoomAdminStore
from storage.server_keys import ServerKeyStore
from storage.state import StateStore
from storage.statistics import StatisticsStore
from storage.to_device import ToDeviceStore
from storage.user_directory import UserDirectoryStore
from storage.users import UserStore


class Stores:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = UserStore(db)
        self.account_validity = AccountValidityStore(db)
        self.deactivated_data = DeactivatedDataStore(db)
        self.events = EventStore(db)
        self.state = StateStore(db)
        self.aliases = AliasStore(db)
        self.account_data = AccountDataStore(db)
        self.filters = FilterStore(db)
        self.push_rules = PushRuleStore(db)
        self.media = MediaStore(db)
        self.media_deletions = MediaDeletionStore(db)
        self.receipts = ReceiptStore(db)
        self.reports = ReportStore(db)
        self.user_directory = UserDirectoryStore(db)
        self.server_keys = ServerKeyStore(db)
        self.federation_queue = FederationQueueStore(db)
        self.remote_invites = RemoteInviteStore(db)
        self.remote_knocks = RemoteKnockStore(db)
        self.cross_signing = CrossSigningStore(db)
        self.device_keys = DeviceKeyStore(db)
        self.to_device = ToDeviceStore(db)
        self.key_backup = KeyBackupStore(db)
        self.organisations = OrganisationStore(db)
        self.roles = RoleStore(db)
        self.audit = AuditStore(db)
        self.accounts = AccountStore(db)
        self.email_codes = EmailCodeStore(db)
        self.room_admin = RoomAdminStore(db)
        self.reachability = ReachabilityStore(db)
        self.refusal_counts = RefusalCountStore(db)
        self.statistics = StatisticsStore(db)
        self.attested_users = AttestedUserStore(db)
        self.event_expiry = EventExpiryStore(db)
        self.retention = RetentionStore(db)
        self.organisation_accounts = OrganisationAccountStore(db)
        self.image_packs = ImagePackStore(db)
