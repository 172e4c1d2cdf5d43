"""The node: builds every component once from the config and wires them together.

Dependency direction: broker -> federation -> storage.  Everything a request handler needs is an
attribute of :class:`Node`; nothing else holds process-global state.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task
from twisted.internet import reactor as default_reactor

from broker.access_policy import AccessPolicy, RoomFacts
from broker.account_validity import AccountValidity
from broker.admin.accounts import AccountDeps
from broker.admin.blocked_rooms import RULE as SHUT_DOWN_RULE
from broker.admin.blocked_rooms import BlockedRooms
from broker.admin.email_codes import OneTimeCodes, code_secret
from broker.admin.email_verification import EmailVerification
from broker.admin.org_file import OrganisationsFileError, read_organisations_file
from broker.admin.password_by_email import PasswordByEmail
from broker.admin.policy_document import PolicyDocument
from broker.admin.reachability import ACCOUNT_DATA_TYPE
from broker.admin.reachability import RULE as REACHABILITY_RULE
from broker.admin.reports import AdminReports
from broker.admin.rooms import AdminRooms
from broker.admin.services import AdminStores, apply_config_file, build_admin_services
from broker.admin.statistics import StatisticsReport
from broker.apps.delivery import build_delivery
from broker.appservice.client import AppServiceClient
from broker.appservice.services import AppServices
from broker.appservice.wiring import build_pusher
from broker.at_rest_keys import KeyFileWatcher, load_keyring
from broker.attestations import attestation_of
from broker.auth import Auth
from broker.auto_delete import AutoDelete, redact_in_sender_name
from broker.clock import Clock
from broker.config import ConfigError, NodeConfig
from broker.deactivated_data import DeactivatedData
from broker.e2ee import cross_signing, keys
from broker.e2ee.context import E2eeContext, E2eeStoreSet
from broker.e2ee.device_lists import E2eeFederation, device_list_changes, on_devices_deleted
from broker.e2ee.keys import KeyCountCache
from broker.e2ee.sync import collect as collect_e2ee
from broker.e2ee.sync import providers as e2ee_sync_providers
from broker.e2ee.sync import share_key as e2ee_share_key
from broker.e2ee.sync import share_key_providers as e2ee_share_key_providers
from broker.e2ee.to_device import ToDevice
from broker.federation_wiring import (
    Federation,
    FederationTransport,
    ask_profile,
    ask_user_status,
    build_federation,
    build_federation_services,
    build_transport,
    local_parts,
)
from broker.group_rules import RULE as GROUPS_RULE
from broker.group_rules import GroupRules
from broker.health import Health
from broker.http.channel import make_site
from broker.http.guards import Guards
from broker.http.metrics_resource import listen_metrics
from broker.http.server import ListenerResource, Router
from broker.http.user_auth import RequestUsers
from broker.image_pack_content import PackContent
from broker.image_pack_members import PackMembers
from broker.image_packs import ImagePacks
from broker.invite_permissions import RULE as INVITE_PERMISSIONS_RULE
from broker.invite_permissions import InvitePermissions
from broker.mail import Mailer
from broker.media.expired import ExpiredMedia
from broker.media.files import MediaFiles
from broker.media.remote import RemoteMedia
from broker.media.repository import MediaRepository
from broker.message_tags import MessageTags
from broker.metrics import NodeMetrics, node_gauges
from broker.notifier import Notifier
from broker.official_members import OfficialMembers
from broker.org_accounts import OrganisationAccounts
from broker.passwords import PasswordHashing
from broker.ratelimit import RateLimiter
from broker.receipts import Receipts
from broker.refusal_counts import KeptCounts
from broker.remote_classes import RemoteClasses
from broker.restatements import AttestedUsers
from broker.retention import Retention
from broker.retention_orgs import OrganisationDefaults
from broker.retention_purge import RetentionPurge
from broker.room_census import RoomCensus
from broker.rooms.aliases import Aliases
from broker.rooms.backfill import Backfiller
from broker.rooms.client_events import ClientEvents
from broker.rooms.create_room import NewRooms
from broker.rooms.membership import Membership
from broker.rooms.remote_invites import RemoteInvites
from broker.rooms.remote_join import EventSigner, RemoteJoins
from broker.rooms.remote_knocks import RemoteKnocks
from broker.rooms.service import RoomEdus, Rooms
from broker.rooms.state_loader import StateLoader
from broker.rooms.visibility import Visibility
from broker.services.account_data import AccountData
from broker.services.accounts import (
    Accounts,
    Credentials,
    Devices,
    DevicesDeleted,
    check_new_password,
)
from broker.services.directory import Directory
from broker.services.e2ee import EndToEndKeys
from broker.services.filters import Filters
from broker.services.history import History
from broker.services.key_backup import KeyBackups
from broker.services.profiles import Profiles
from broker.services.push_rules import PushRules
from broker.services.relations import build_relations
from broker.services.remote_aliases import RemoteAliases
from broker.services.remote_profiles import RemoteProfileCache
from broker.services.reports import Reports
from broker.services.room_creation import RoomCreation
from broker.services.room_events import RoomEvents
from broker.services.typing import Typing
from broker.services.user_directory import UserDirectory
from broker.statistics import Statistics
from broker.streams import StreamWriter
from broker.sync.handler import E2eeSync, SyncHandler, SyncStores
from broker.tls import server_context_factory
from broker.typing_tracker import TypingTracker
from protocol.signing import read_signing_key_file
from storage.at_rest import UnknownKey, check_keyring_txn
from storage.database import Database, DatabaseConfig
from storage.health import HealthStore
from storage.migrations import apply_migrations
from storage.stores import Stores
from storage.stream import StreamIdGenerator
from storage.stream_reservation import Reservation

if TYPE_CHECKING:
    from federation.sender.sender import FederationSender
    from federation.transport_client import FederationClient

logger = logging.getLogger(__name__)

# Connections the kernel holds for the node before it accepts them (capped by the kernel's
# net.core.somaxconn).  Twisted's default of 50 held back some of thousands of clients
# reconnecting at once (after a restart, or a big room's long-polls) for tens of seconds.
LISTEN_BACKLOG = 4096

# How often devices' last use is written (it is also written before devices are listed).
LAST_SEEN_FLUSH_SECONDS = 60.0


class Node:
    federation: Federation
    room_census: RoomCensus

    def __init__(self, config: NodeConfig, reactor: Any = None) -> None:
        self.config = config
        self.reactor: Any = reactor or default_reactor
        self.server_name = config.server_name
        self.clock = Clock(self.reactor)
        self.signing_key = read_signing_key_file(config.signing_key_path)
        self.db = Database(
            DatabaseConfig(
                engine=config.database_engine,
                path=str(config.database_path),
                dsn=config.database_dsn,
                pool_size=config.database_pool_size,
            ),
            self.reactor,
            at_rest=load_keyring(config),  # encryption at rest: off without a key
        )
        self.stores = Stores(self.db)
        self.auth = Auth(self.stores.users, self.clock,
                         PasswordHashing(config.password_hashing, self.reactor),
                         config.caches.tokens)
        self.app_service_client = AppServiceClient(self.reactor)  # application services
        self.app_services = AppServices(config.app_services, self.stores.users, self.clock,
                                        self.server_name, self.app_service_client)
        self.ratelimiter = RateLimiter(config.rate_limits, config.rate_limits_enabled, self.clock)
        self.policy = AccessPolicy()
        self.mailer = Mailer(config.smtp, self.reactor)
        self.validity = AccountValidity(config.account_validity, self.stores.account_validity,
                                        self.auth, self.clock, mail=self.mailer,
                                        public_baseurl=config.public_baseurl)
        self.stream: StreamIdGenerator | None = None
        self.notifier = Notifier(self.clock, self._local_room_audience,
                                 wake_batch=config.sync.wake_batch,
                                 wake_budget_s=config.sync.wake_budget_ms / 1000,
                                 positions=config.sync.change_positions)
        self.router = Router(config.max_request_body_bytes)
        self.ports: list[Any] = []
        self.health = Health(HealthStore(self.db).ping, self.clock)  # GET /health
        self.metrics = NodeMetrics(self.reactor)  # its own registry, on the metrics listener
        if config.metrics is not None:  # else nothing observes: no cost
            self.router.observe = self.metrics.observe_request
            self.db.observe = self.metrics.observe_transaction

    def setup(self) -> None:
        """Prepare storage (migrations, in-memory positions) before serving."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.db.start()
        applied = apply_migrations(self.db, now_ms=self.clock.time_ms())
        if applied:
            logger.info("applied schema migrations %s", applied)
        self._check_at_rest_keys()
        self.stream = StreamIdGenerator.from_database(self.db)
        self.notifier.start_position = self.stream.current_token()
        self.streams = StreamWriter(self.stream, self.notifier)
        # -- accounts, devices, end-to-end encryption, filters, push rules, media --
        self.account_data = AccountData(self.stores.account_data, self.stores.push_rules,
                                        self.streams)
        self.invite_permissions = InvitePermissions(self.stores.account_data)
        # -- rooms --
        self.aliases = Aliases(self.stores.aliases, self.server_name)
        transport = build_transport(self.config, self.reactor, self.clock, self.signing_key,
                                    self.stores)
        self.rooms = Rooms(self.server_name, self.signing_key, self.stores.events,
                           self.stores.state, self.stores.users, self.stream, self.reactor,
                           self.clock, self.notifier, transport.sender, self.config.caches)
        self.typing = TypingTracker(self.clock, self.notifier, Reservation(self.db, "typing"))
        self.media = MediaRepository(
            self.stores.media, MediaFiles(self.config.media_store_path, self.db.at_rest),
            self.clock, self.server_name, self.config.max_upload_bytes)
        self._build_federation(transport)
        self.remote_media = RemoteMedia(  # another server's media, for local users
            self.media.files, self.federation.client.get_raw, self.clock, self.server_name,
            self.config.max_upload_bytes, self.federation.client.is_allowed,
            expiry_ms=self.config.remote_caches.media_expiry_ms,
            max_entries=self.config.remote_caches.media_files)
        self._build_e2ee_services(  # accounts, devices, e2ee...
            self.federation.sender, self.federation.client)
        self._build_room_services()
        self._build_admin_services()
        self._build_admin_room_services()
        self._build_room_api_services()  # after the admin services: profile visibility
        self.refusal_counts = KeptCounts(self.stores.refusal_counts, {  # kept across restarts
            "policy": self.policy.refusals, "message_tags": self.message_tags.refusals,
            "remote_classes": self.remote_classes.ignored})
        self._build_statistics()
        # the delivery status of eGov applications' messages (broker/apps/delivery.py)
        self.delivery = build_delivery(self)
        self._build_image_packs()
        self.app_service_pusher = build_pusher(self)  # application services' transactions
        self._build_notice_rooms()
        self._build_apps()
        if self.config.metrics is not None:  # what is read at each scrape
            self.metrics.watch(*node_gauges(self.notifier, self.db, self.federation.sender,
                                            self.retention_purge.counts,
                                            self.to_device.summary, self.reactor))
            self.metrics.watch(self.delivery.collector())  # application messages' delivery
        self.router.guards = Guards(RequestUsers(self.auth, self.validity.expired,
                                                 self.app_services),
                                    self.ratelimiter, self.federation.authentication
                                    if self.config.federation.enabled else None)
        self._build_handlers()

    def _check_at_rest_keys(self) -> None:
        """Refuse to start with a keyring that lacks a key the data is sealed with (a wrong or
        missing key), rather than fail on each read or write clear text beside sealed data."""
        try:
            self.db.run_sync("at_rest_check_keys", check_keyring_txn, self.db.at_rest,
                             self.clock.time_ms())
        except UnknownKey as e:
            raise ConfigError("at_rest", str(e)) from e

    def _start_data_limits(self) -> None:
        """The jobs that keep data no longer than allowed, each stopped at shutdown."""
        # auto-delete messages redacted when due, expired events' content removed, accounts
        # without an expiry given one, deactivated accounts' personal data deleted
        for job in (self.auto_delete, self.retention_purge, self.validity,
                    self.deactivated_data):
            job.start(self.reactor)
            self.reactor.addSystemEventTrigger("before", "shutdown", job.stop)

    async def start(self) -> None:
        """Load what the node keeps in memory; call after setup(), before serving."""
        if self.config.at_rest_key_file is not None:  # a rotation's new key file, read again
            self.at_rest_keys = KeyFileWatcher(self.config.at_rest_key_file, self.db.at_rest)
            self.at_rest_keys.start(self.reactor)
            self.reactor.addSystemEventTrigger("before", "shutdown", self.at_rest_keys.stop)
        await self.rooms.start()
        await self.app_services.start()  # their sender users exist
        await self.org_accounts.load()  # before the organisations file: a move in it
        await self.pack_members.load()  # changes whose packs members get
        # What each audience sees of profiles, before the organisations file too: a setting
        # the file changes has its members' rooms restated as a change through the API has.
        await self.admin.profile_visibility.load()
        await self.apply_organisations_file()
        await self.admin.changes.start_at_head()  # then what other processes change
        await self.admin.classes.load()  # who is verified: asked on every path, from memory
        await self.admin.reachability.load()  # who public users may invite, from memory
        await self.invite_permissions.load()  # whom each user takes invites from, from memory
        await self.blocked_rooms.load()  # rooms shut down: asked on every send, from memory
        await self.apps.start()  # eGov applications: their tokens, asked from memory
        await self.broadcast_jobs.resume()  # broadcasts a stop interrupted go on
        await self.refusal_counts.load()  # the refusals counted before this start
        self.refusal_counts.start(self.reactor)  # then written in batches, off the requests
        self.reactor.addSystemEventTrigger("before", "shutdown", self.refusal_counts.stop)
        self.statistics.start(self.reactor)  # the usage counted, written in batches
        self.reactor.addSystemEventTrigger("before", "shutdown", self.statistics.stop)
        self.room_census.start(self.reactor)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.room_census.stop)
        self.admin.changes.start(self.reactor)
        self.admin.audit.start(self.reactor)  # signs the audit log's head periodically
        self.official_members.start(self.reactor)  # users no longer verified leave groups
        self.reactor.addSystemEventTrigger("before", "shutdown", self.official_members.stop)
        await self.federation.start()
        self.to_device.start()  # accounts, devices, e2ee, media: their background jobs
        self.reactor.addSystemEventTrigger("before", "shutdown", self.to_device.stop)
        self.media.start()
        self.remote_media.clear()
        await self.app_service_pusher.start()  # resumes each service after its position
        self.reactor.addSystemEventTrigger("before", "shutdown", self.app_service_pusher.stop)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.media.stop)
        await self.delivery.start(self.reactor)  # application messages' status, kept
        await self.apps.resume()  # messages accepted before the last stop, never sent
        self.reactor.addSystemEventTrigger("before", "shutdown", self.delivery.stop)
        self._start_data_limits()
        await self.pack_members.start()  # goes on with image pack jobs a stop interrupted
        self.reactor.addSystemEventTrigger("before", "shutdown", self.pack_members.stop)
        self.relations_fill.start(self.reactor)  # indexes relations stored before the index
        self.reactor.addSystemEventTrigger("before", "shutdown", self.relations_fill.stop)
        self._last_seen_loop = task.LoopingCall(
            lambda: defer.ensureDeferred(self._flush_last_seen()))
        self._last_seen_loop.clock = self.reactor
        self._last_seen_loop.start(LAST_SEEN_FLUSH_SECONDS, now=False)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.federation.stop)
        self.health.ready()  # GET /health may answer 200 from now on
        self.reactor.addSystemEventTrigger("before", "shutdown", self.health.stopping)

    def _build_admin_services(self) -> None:
        """Organisations, roles and the audit log (the admin API and commands use them)."""
        stores = self.stores
        self.admin = build_admin_services(
            AdminStores(stores.organisations, stores.roles, stores.audit, stores.users,
                        stores.accounts, stores.email_codes, stores.reachability),
            self.clock, self.signing_key, self.config.audit_sign_interval_seconds,
            self.auth.forget_user,
            AccountDeps(self.server_name, self.auth.passwords.hash, check_new_password,
                        self.accounts.end_account))
        self.codes = OneTimeCodes(stores.email_codes, self.mailer, self.ratelimiter,
                                  self.clock, self.config.email_codes,
                                  code_secret(self.signing_key.encode()))
        admin = self.admin
        self.email_verification = EmailVerification(
            self.codes, stores.email_codes, admin.accounts, admin.verifications,
            admin.authority, admin.audit, self.server_name)
        self.password_by_email = PasswordByEmail(
            self.codes, stores.email_codes, stores.accounts, admin.audit,
            self.accounts.set_password, self.server_name)

    def _build_admin_room_services(self) -> None:
        """Rooms and reports for admins; shut down rooms refused by the access policy."""
        stores = self.stores
        self.blocked_rooms = BlockedRooms(stores.room_admin)
        self.policy.add_rule(self.blocked_rooms.rule, SHUT_DOWN_RULE)
        self.admin.changes.listen(self.blocked_rooms.changes_seen)
        self.rooms.creator.attest = partial(attestation_of, self.admin.classes)  # our users
        self.group_rules = GroupRules(self.admin.classes, self.remote_classes,
                                      self.server_name, self.config.groups)
        self.policy.add_rule(self.group_rules.rule, GROUPS_RULE)
        self.rooms.creator.policy = self.policy  # member limits, where joins are serialised
        # Other servers learn a verification at once (the user's joins restated, attested),
        # and at start every change made while the node was stopped.
        self.attested_users = AttestedUsers(self.rooms, self.admin.classes,
                                            stores.attested_users, self.clock)
        self.official_members = OfficialMembers(self.rooms, stores.state, self.admin.classes,
                                                self.clock, self.attested_users)
        reachability = self.admin.reachability  # who public users may invite
        reachability.remote = self.remote_classes
        self.admin.profile_visibility.remote = self.remote_classes  # other nodes' verified
        # Rooms stating no retention take their creator's organisation's default.
        self.retention.organisations = OrganisationDefaults(
            lambda: self.admin.profile_visibility.tree, self._verified_organisation)
        self.policy.add_rule(reachability.rule, REACHABILITY_RULE)
        self.account_data.watch(ACCOUNT_DATA_TYPE, reachability)
        self.admin.changes.listen(reachability.changes_seen)
        # what each user lets invite them (MSC4155), on top of the separation rules
        self.policy.add_rule(self.invite_permissions.rule, INVITE_PERMISSIONS_RULE)
        for data_type, watcher in self.invite_permissions.watchers.items():
            self.account_data.watch(data_type, watcher)
        authority, audit = self.admin.authority, self.admin.audit
        self.admin_rooms = AdminRooms(stores.room_admin, stores.state, self.rooms,
                                      self.blocked_rooms, authority, audit, self.clock,
                                      self.retention)
        self.admin_reports = AdminReports(stores.reports, stores.events, authority, audit,
                                          self.clock)
        self.policy_document = PolicyDocument(
            self.policy, self.config.groups, reachability.summary,
            self.admin.profile_visibility, lambda: len(self.blocked_rooms),
            self._message_tags_summary, self.remote_classes.summary, self._retention_summary,
            authority, audit)

    def _build_statistics(self) -> None:
        """Usage statistics from metadata: each path counts in memory (no database round
        trip), written in batches (the inbound transactions are counted in _build_handlers)."""
        stats = self.statistics = Statistics(self.stores.statistics, self.clock,
                                             self.server_name, self._verified_organisation)
        self.room_events.on_sent = stats.message_sent
        self.sync.on_sync = stats.active
        self.media.on_upload = stats.uploaded
        self.room_creation.on_created = stats.room_created
        self.policy.refusal_listeners.append(stats.refused)
        self.message_tags.refusal_listeners.append(stats.refused_tags)
        self.federation.sender.set_delivered(stats.federation_sent)
        # the rooms held, by kind
        self.room_census = RoomCensus(self.stores.room_admin, self.stores.state, stats,
                                      self.server_name)
        self.statistics_report = StatisticsReport(self.stores.statistics, self.admin.authority,
                                                  self.admin.audit, self.clock)

    def _build_image_packs(self) -> None:
        """Organisations' accounts and image packs, which their members get (after the room
        and admin services)."""
        stores = self.stores
        self.org_accounts = OrganisationAccounts(stores.organisation_accounts,
                                                 self.server_name, self.clock)
        members = PackMembers(
            stores.image_packs, stores.accounts, stores.organisations, stores.account_data,
            self.rooms, self.membership.join, self.org_accounts, self.streams, self.clock,
            self.reactor)
        self.pack_members: PackMembers = members
        self.image_packs = ImagePacks(
            self.admin.authority, self.admin.audit,
            PackContent(self.server_name, stores.media.get_media), members, self.org_accounts,
            self.rooms, self.new_rooms.create, stores.image_packs, self.clock)
        self.admin.accounts.on_created(members.user_changed)
        self.admin.accounts.on_moved(members.user_changed)
        self.admin.organisations.watch(members.organisations_written, lambda org_id: None)
        self.admin.changes.listen(members.changes_seen)  # also made by other processes

    def _build_notice_rooms(self) -> None:
        """Read-only notice rooms of apps and broadcasts (after the organisations' accounts)."""
        from broker.notice_wiring import NoticeDeps, build_notice_rooms

        self.notice_rooms, self.notice_invites = build_notice_rooms(NoticeDeps(
            self.server_name, self.db, self.rooms, self.new_rooms, self.membership,
            self.admin.classes, self.remote_classes, self.org_accounts, self._member_profile,
            self.stores.accounts.taken, self.clock))
        from broker.broadcasts.jobs import BroadcastJobs
        from broker.broadcasts.service import Broadcasts
        from broker.broadcasts.wiring import build_broadcasts  # portal broadcasts, in them

        self.broadcasts: Broadcasts
        self.broadcast_jobs: BroadcastJobs
        self.broadcasts, self.broadcast_jobs = build_broadcasts(
            self.db, self.notice_rooms, self.admin, self.org_accounts,
            self.delivery.progress.synced_upto, self.clock)

    def _build_apps(self) -> None:
        """eGov applications: registrations, their sending and the application API (after
        the notice rooms and the delivery status)."""
        from broker.apps.wiring import build_apps

        self.apps = build_apps(self)

    async def _account_ended(self, user_id: str) -> None:
        """A deactivated account (by its user or an admin): public at once, out of its rooms
        (its image pack entries removed)."""
        self.admin.classes.ended(user_id)
        self.apps.messages.deps.recipients.forget(user_id)  # apps' messages: unknown now
        self.app_services.forget(user_id)  # nor a user an application service acts as
        await self.rooms.leave_all_rooms(user_id)
        self.pack_members.user_changed(user_id)

    async def apply_organisations_file(self) -> None:
        """Apply the organisations file the config names, if it changed since last applied;
        a wrong file stops the start with a one-line ConfigError naming its line."""
        path = self.config.organisations_path
        if path is None:
            return
        try:
            applied = await apply_config_file(self.admin.organisations,
                                              read_organisations_file(path))
        except OrganisationsFileError as e:
            raise ConfigError("organisations.path", str(e)) from e
        if applied is not None:
            logger.info("applied %d organisations from %s", len(applied), path)

    async def _flush_last_seen(self) -> None:
        try:
            await self.auth.flush_last_seen()
        except Exception:  # the loop must keep running; the next flush retries newer data
            logger.exception("writing devices' last use failed")

    def _build_account_services(self, devices_deleted: DevicesDeleted) -> None:
        """Accounts, devices, UIA, filters, push rules, key backups."""
        from broker.client_api.uia import UserInteractiveAuth

        users = self.stores.users
        self.credentials = Credentials(users, self.auth, self.ratelimiter, self.server_name)
        self.uia = UserInteractiveAuth(  # the email stage: built later, with the admin services
            users, self.credentials, self.clock,
            lambda sid, secret: self.password_by_email.proven_user(sid, secret))
        self.accounts = Accounts(
            users, self.auth, self.ratelimiter, self.clock, self.server_name,
            self.config.public_baseurl, self.config.registration_enabled, devices_deleted,
            self._account_ended, self.validity.expiry_for_new)
        self.devices = Devices(users, self.auth, devices_deleted)
        self.filters = Filters(self.stores.filters)
        self.push_rules = PushRules(self.stores.push_rules, self.streams)
        self.key_backups = KeyBackups(self.stores.key_backup)

    def _build_e2ee_services(self, federation_sender: FederationSender | None,
                             federation_client: FederationClient | None) -> None:
        """End-to-end encryption: one context its functions read, bound to the endpoints'
        operations here (after federation, whose sender and client it uses); then the
        account services, which hand deleted devices to it."""
        assert self.stream is not None
        self.key_counts = KeyCountCache()
        self.e2ee_federation = E2eeFederation(federation_sender, federation_client)
        self.to_device: ToDevice = ToDevice(
            self.stores.to_device, self.streams, self.notifier, self.clock, self.reactor,
            self.server_name, federation_sender, self.config.undelivered_to_device_days)
        stores = self.stores
        e2ee = self.e2ee = E2eeContext(
            self.server_name, E2eeStoreSet(stores.device_keys, stores.cross_signing,
                                           stores.users),
            self.stream, self.streams, self.notifier, self.clock, self.rooms, self.key_counts,
            self.e2ee_federation, self.to_device)
        self.e2ee_keys = EndToEndKeys(
            partial(keys.upload_keys, e2ee), partial(keys.query_keys, e2ee),
            partial(keys.claim_keys, e2ee), partial(device_list_changes, e2ee),
            self.stream.current_token, partial(cross_signing.check_key_upload, e2ee),
            partial(cross_signing.store_uploaded_keys, e2ee),
            partial(cross_signing.upload_signatures, e2ee))
        self._build_account_services(partial(on_devices_deleted, e2ee))

    def _build_room_services(self) -> None:
        """The room services endpoints use (after federation: EDUs need its sender)."""
        federation, stores = self.federation, self.stores
        signer = EventSigner(self.server_name, self.signing_key, self.clock)
        joins = RemoteJoins(self.server_name, signer, federation.client, federation.policy,
                            federation.keyring, self.rooms, stores.state, self.clock)
        remote_invites = RemoteInvites(signer, federation.client, federation.keyring,
                                       self.rooms, stores.remote_invites, self.streams)
        remote_knocks = RemoteKnocks(signer, federation.client, federation.policy,
                                     stores.remote_knocks, self.streams)
        self.membership = Membership(
            self.server_name, self.rooms, self.aliases, stores.users, stores.state,
            stores.remote_invites, joins, remote_invites, remote_knocks, federation.policy,
            federation.client, self.policy, self._member_profile, self.remote_classes)
        self.new_rooms = NewRooms(self.server_name, self.rooms, self.aliases, remote_invites,
                                  self.clock)
        self.client_events = ClientEvents(self.stores.events, self.clock)
        assert self.stream is not None
        self.retention = Retention(self.config.retention, self.clock)
        # What leaves for other servers after it expired goes pruned, as the endpoints serve it.
        self.federation.sender.set_outgoing_pdus(
            partial(self.retention.prune_expired, room_of=self.rooms.registry.cached))
        self.visibility = Visibility(self.stores.events, self.stream, self.retention)
        self.retention_purge = RetentionPurge(
            self.stores.retention, self.retention, self.clock, self._retention_purged,
            ExpiredMedia(self.stores.media_deletions, self.media.files, self.server_name))
        self.deactivated_data = DeactivatedData(  # deactivated accounts' personal data
            self.stores.deactivated_data, self.config.retention.deactivated_account_data_ms,
            self.config.retention.purge_interval_ms, self.clock, self._personal_data_deleted)
        tags = self.config.tags
        self.message_tags = MessageTags(tags, self._verified_organisation)
        self.room_events = RoomEvents(
            self.rooms, self.membership, self.stores.events, self.stores.state, self.visibility,
            self.client_events, self.policy, self.message_tags, self.clock, self.retention)
        self.auto_delete = AutoDelete(self.stores.event_expiry,
                                      redact_in_sender_name(self.rooms), self.clock,
                                      tags.auto_delete_check_seconds, tags.auto_delete_batch)
        self.room_creation = RoomCreation(
            self.new_rooms.create, self._member_profile, self.policy, self.server_name,
            self.config.encryption_by_default, self.stores.organisations)
        edus = RoomEdus(self.rooms.registry, self.server_name, self.federation.sender)
        self.receipts = Receipts(self.rooms, self.stores.events, self.stores.receipts,
                                 self.stores.account_data, self.streams, edus, self.clock)
        self.typing_service = Typing(self.rooms, self.typing, edus)
        stores = self.stores
        self.sync = SyncHandler(
            SyncStores(stores.events, stores.state, stores.receipts, stores.remote_invites,
                       stores.account_data, stores.push_rules, stores.remote_knocks),
            self.rooms, self.stream, self.notifier, self.typing, self.visibility,
            self.client_events, E2eeSync(
                partial(collect_e2ee, self.e2ee, e2ee_sync_providers()),
                partial(e2ee_share_key, self.e2ee, e2ee_share_key_providers())),
            self.clock, self.invite_permissions.ignores, self.retention)

    def _build_room_api_services(self) -> None:
        """Reports, profiles, the user directory, room history and the room directory."""
        stores = self.stores
        self.reports = Reports(stores.reports, self.rooms, stores.events, stores.state,
                               stores.user_directory, self.clock)
        self.remote_profiles = RemoteProfileCache(  # forgotten when a membership restates
            partial(ask_profile, self.federation.client), self.clock, self.rooms.is_mine,
            ttl_ms=self.config.remote_caches.profile_ttl_ms,
            max_entries=self.config.remote_caches.profiles)
        self.rooms.persisted_listeners.append(self.remote_profiles.persisted)
        self.profiles = Profiles(stores.users, self.rooms, self.policy, self.server_name,
                                 lambda user_id: self.admin.accounts.profile_fields(user_id),
                                 self.admin.profile_visibility,
                                 stores.organisations.members_in,
                                 self.remote_profiles.ask
                                 if self.config.federation.enabled else None)
        # an organisation's setting changed: its members' rooms restate what they may show
        self.admin.profile_visibility.on_changed(self.profiles.organisations_changed)
        # a user moved by another process (a command): their rooms restate it within a poll
        self.admin.changes.listen(self.profiles.changes_seen)
        self.admin.accounts.on_moved(self.profiles.user_moved)
        self.user_directory = UserDirectory(stores.user_directory, self.policy,
                                            self.admin.profile_visibility,
                                            self.admin.reachability.findable_by)
        self.history = History(self.rooms, stores.events, stores.state, self.visibility,
                               self.client_events, self.federation.backfiller, self.retention)
        self.relations, self.relations_fill = build_relations(self.history, self.db)
        self.room_events.check_annotation = self.relations.refuse_duplicate_annotation
        self.client_events.aggregate = self.relations.aggregations  # unsigned.m.relations
        self.directory = Directory(self.aliases, self.rooms, stores.state, self.server_name,
                                   self.federation.client, self.policy,
                                   RemoteAliases(self.federation.client, self.clock,
                                                 ttl_ms=self.config.remote_caches.alias_ttl_ms,
                                                 max_entries=self.config.remote_caches.aliases))

    def _build_federation(self, transport: FederationTransport) -> None:
        stores = self.stores
        self.federation = build_federation(
            transport, stores, self.rooms,
            StateLoader(self.rooms.registry, stores.state, stores.events),
            Backfiller(self.server_name, stores.events, transport.client, transport.keyring))
        # What other nodes attest of their users: learned from their membership events, asked
        # of them for a join, knock or invite into an official group or a knock on a direct chat.
        self.remote_classes = RemoteClasses(
            self.server_name, self.clock, self.config.groups.remote_class_seconds,
            partial(ask_user_status, transport.client) if self.config.federation.enabled
            else None, ask_seconds=self.config.groups.remote_class_ask_seconds)
        self.rooms.on_remote_membership = self.remote_classes.learn

    def _build_handlers(self) -> None:
        from broker.admin.account_renewal import AccountRenewal
        from broker.admin_api import admin_endpoints
        from broker.admin_api.appservices import AppServiceEndpoints
        from broker.admin_api.renewal import RenewalEndpoints
        from broker.client_api import client_endpoints
        from broker.client_api.account_renewal import AccountRenewalEndpoints
        from broker.client_api.email_verification import EmailVerificationEndpoints
        from broker.federation_api import federation_endpoints
        from broker.federation_api.media import FederationMediaEndpoints

        self.router.add(*client_endpoints(self))
        self.router.add(*admin_endpoints(self.admin, self.admin_rooms, self.admin_reports,
                                         self.policy_document, self.image_packs,
                                         self.statistics_report))
        self.admin.accounts.on_created(self.validity.created)  # accounts made without expiry
        self.router.add(RenewalEndpoints(AccountRenewal(
            self.admin.accounts, self.validity, self.stores.account_validity), self.admin.audit),
            AccountRenewalEndpoints(self.validity))
        self.router.add(EmailVerificationEndpoints(self.email_verification, self.admin.audit))
        from broker.admin_api.broadcasts import BroadcastEndpoints

        self.router.add(BroadcastEndpoints(self.broadcasts, self.admin.audit))
        self.router.add(AppServiceEndpoints(self.app_service_pusher))
        from broker.apps_api import apps_endpoints
        from broker.apps_api.auth import AppTokens

        self.router.add(*apps_endpoints(self.apps, self.media, self.config.max_upload_bytes,
                                        self.config.apps.max_message_bytes))
        assert self.router.guards is not None
        self.router.guards.apps = AppTokens(self.apps.registry)
        if self.config.federation.enabled:
            services = build_federation_services(
                self.config, self.signing_key, self.clock, self.stores, self.rooms,
                self.streams, self.typing, self.federation, self.policy, local_parts(self),
                self.admin.classes, self.remote_classes, self.invite_permissions)
            services.receiver.on_received = self.statistics.federation_received
            self.delivery.watch_federation(services.receiver.edus)  # remote users' receipts
            self.app_service_pusher.watch_federation(services.receiver.edus)  # and services'
            services.invites.on_kept = self.notice_invites.invite_kept  # notice rooms joined
            self.router.add(*federation_endpoints(services, self.server_name, self.clock))
            self.router.add(FederationMediaEndpoints(self.media, self.server_name))
        self.router.compile()

    def listen(self) -> None:
        if self.config.metrics is not None:
            self.ports.append(listen_metrics(self.reactor, self.config.metrics,
                                             self.metrics.scrape))
        for listener in self.config.listeners:
            site = make_site(ListenerResource(self.router, listener.resources))
            if listener.tls_certificate is not None and listener.tls_private_key is not None:
                context = server_context_factory(listener.tls_certificate,
                                                 listener.tls_private_key)
                port = self.reactor.listenSSL(listener.port, site, context,
                                              backlog=LISTEN_BACKLOG,
                                              interface=listener.bind_address)
            else:
                port = self.reactor.listenTCP(listener.port, site, backlog=LISTEN_BACKLOG,
                                              interface=listener.bind_address)
            self.ports.append(port)
            logger.info("listening on %s:%d (%s%s)", listener.bind_address,
                        port.getHost().port, ", ".join(listener.resources),
                        ", TLS" if listener.tls_certificate else "")

    async def _member_profile(self, user_id: str, room: RoomFacts | None) -> dict[str, Any]:
        """What a membership event restates of a user's profile (the profiles service is
        built after the room services that ask)."""
        return await self.profiles.in_room(user_id, room)

    def _message_tags_summary(self) -> dict[str, Any]:
        """The policy document's message tags, with the messages auto-deleted so far."""
        deleted = self.auto_delete
        return {**self.message_tags.summary(),
                "auto_deleted": {"redacted": deleted.redacted,
                                 "not_redacted": deleted.not_redacted}}

    def _retention_purged(self, room_id: str, event_ids: list[str]) -> None:
        """Events whose content the retention purge removed: memory forgets it too."""
        self.rooms.writer.purged(room_id, event_ids)
        self.client_events.forget(event_ids)
        self.statistics.purged(len(event_ids))

    def _personal_data_deleted(self, user_id: str) -> None:
        self.admin.reachability.forget(user_id)  # what memory held of the deleted rows
        self.invite_permissions.forget(user_id)

    def _retention_summary(self) -> dict[str, Any]:
        """The policy document's retention section: the bounds and what was purged."""
        expiry = self.federation.sender.expiry
        return {**self.retention.capability(),
                "purge_interval": self.config.retention.purge_interval_ms,
                "purge": self.retention_purge.counts.to_json(),
                "organisations": self.retention.organisations_summary(),
                "deactivated_accounts": self.deactivated_data.summary(),
                "undelivered": {
                    "to_device": self.to_device.summary(),
                    "federation_queue": expiry.to_json() if expiry is not None else None}}

    def _verified_organisation(self, user_id: str) -> str | None:
        """The organisation ``user_id`` is verified in now (memory; the message tags ask)."""
        row = self.admin.classes.verification(user_id)
        return row.org_id if row is not None else None

    def _local_room_audience(self, room_id: str) -> list[str]:
        """Local users who see a room's changes in /sync (joined or invited)."""
        return self.rooms.local_audience(room_id)

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def is_mine(self, matrix_id: str) -> bool:
        return matrix_id.split(":", 1)[-1] == self.server_name
