"""Wiring: the ``Services`` container (config, database, handlers) and the aiohttp apps.

``Services`` is a plain dataclass built once per process; HTTP handlers reach it through
``services_of(request)``. Nothing here holds request state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from nacl.signing import SigningKey

from hs.config import HomeserverConfig
from hs.core.keys import generate_signing_key, read_signing_key_file
from hs.federation.edus import EduHandler
from hs.federation.sender import FederationSender
from hs.federation.sender.wiring import wire_federation_sending
from hs.federation.setup import Federation, create_federation
from hs.handlers.account_data import AccountDataHandler
from hs.handlers.accounts import AccountHandler
from hs.handlers.auth import AuthHandler
from hs.handlers.client_events import Viewer
from hs.handlers.device_lists import DeviceListHandler
from hs.handlers.devices import DeviceHandler
from hs.handlers.directory import DirectoryHandler
from hs.handlers.e2e_keys import E2EKeysHandler
from hs.handlers.federation import FederationRooms
from hs.handlers.federation_queries import FederationQueries
from hs.handlers.filters import FilterHandler
from hs.handlers.hierarchy import HierarchyHandler
from hs.handlers.login import LoginHandler
from hs.handlers.openid import OpenIdHandler
from hs.handlers.passwords import Passwords
from hs.handlers.presence import PresenceHandler
from hs.handlers.profile import ProfileHandler
from hs.handlers.push import PushHandler
from hs.handlers.read_markers import ReadMarkersHandler
from hs.handlers.receipts import ReceiptsHandler
from hs.handlers.registration import RegistrationHandler
from hs.handlers.rooms import RoomHandler
from hs.handlers.sync import SyncHandler, device_list_positions
from hs.handlers.timeline import TimelineHandler
from hs.handlers.to_device import ToDeviceHandler
from hs.handlers.typing import TypingHandler
from hs.handlers.uia import InteractiveAuth
from hs.http.middleware import BODY_LIMIT, METRICS, X_FORWARDED, matrix_middleware
from hs.http.ratelimit import Ratelimiters
from hs.notifier import Notifier
from hs.storage.account_data import AccountDataStore
from hs.storage.accounts import AccountStore
from hs.storage.database import Database, open_database
from hs.storage.directory import DirectoryQueries
from hs.storage.e2e import E2EStore
from hs.storage.events import EventsStore
from hs.storage.filters import ClientReadStore, FilterStore
from hs.storage.presence import PresenceStore
from hs.storage.receipts import ReceiptsStore
from hs.storage.streams import STREAMS, Streams
from hs.storage.to_device import ToDeviceStore

if TYPE_CHECKING:  # prometheus_client is imported only when metrics are on
    from hs.http.metrics import HttpMetrics

logger = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Services:
    """Everything a request handler may need, built once at startup."""

    config: HomeserverConfig
    db: Database
    store: AccountStore
    ratelimiters: Ratelimiters
    passwords: Passwords
    auth: AuthHandler
    uia: InteractiveAuth
    devices: DeviceHandler
    accounts: AccountHandler
    login: LoginHandler
    registration: RegistrationHandler
    profiles: ProfileHandler
    #: None unless ``enable_metrics``.
    metrics: HttpMetrics | None
    #: Stream-position generators of this process (events, receipts, typing, ...).
    streams: Streams
    #: Events, state groups, rooms and memberships.
    events: EventsStore
    #: Wakes long-polling requests when a stream advances for a room or user.
    notifier: Notifier
    #: Outbound federation client, keyring, key server and inbound request authentication.
    federation: Federation
    #: The server's ed25519 signing keys (first = current).
    signing_keys: list[SigningKey]
    #: Room creation, membership and sending (the local event pipeline).
    rooms: RoomHandler
    clock: Callable[[], int] = wall_clock_ms
    #: Shared-secret registration nonces -> creation time (ms), like Synapse: in memory.
    admin_nonces: dict[str, int] = field(default_factory=dict)
    #: Aliases, directory visibility, /publicRooms (and joined/power checks).
    directory: DirectoryHandler = field(init=False)
    #: Who is typing (in memory, per process); ``typing_changes_since`` for /sync.
    typing: TypingHandler = field(init=False)
    #: Read receipts; ``receipts.store.receipts_since`` for /sync.
    receipts: ReceiptsHandler = field(init=False)
    #: ``m.fully_read`` markers (room account data) plus receipts.
    read_markers: ReadMarkersHandler = field(init=False)
    #: Global and per-room account data on the "account_data" stream.
    account_data: AccountDataStore = field(init=False)
    #: Uploaded client filters (helper L3).
    filters: FilterHandler = field(init=False)
    #: The read side of rooms: /messages, /context, /state, members, relations (L3).
    timeline: TimelineHandler = field(init=False)
    #: Device-list change stream; ``device_list_changes_since`` for /sync (helper M).
    device_lists: DeviceListHandler = field(init=False)
    #: E2EE keys; ``one_time_key_counts``/``unused_fallback_key_types`` for /sync.
    e2e_keys: E2EKeysHandler = field(init=False)
    #: To-device messages; ``get_to_device``/``ack_to_device`` for /sync.
    to_device: ToDeviceHandler = field(init=False)
    #: OpenID tokens for integrations (request_token; federation userinfo).
    openid: OpenIdHandler = field(init=False)
    #: Space hierarchies (client and federation), with the remote-summary cache.
    hierarchy: HierarchyHandler = field(init=False)
    #: Account data and room tags with permission checks and /sync wake-ups (helper S1).
    account_data_handler: AccountDataHandler = field(init=False)
    #: Presence states on the "presence" stream (S1); inert when ``presence.enabled`` is off.
    presence: PresenceHandler = field(init=False)
    #: ``GET /sync`` (S1).
    sync: SyncHandler = field(init=False)
    #: Push rules, push actions/unread counts (``unread_counts``, ``rules_for_sync``),
    #: /notifications and pushers (helper S2).
    push: PushHandler = field(init=False)
    #: Outbound federation: per-destination transaction queues, backoff, catch-up and
    #: outbound EDUs (helper F2).
    sender: FederationSender = field(init=False)
    #: Inbound EDUs of federation transactions: ``await edu_handler.on_edus(origin, edus)``.
    edu_handler: EduHandler = field(init=False)
    #: Outbound queries for clients: remote profiles, aliases, keys, device lists (F2).
    federation_queries: FederationQueries = field(init=False)
    #: Rooms over federation: /send PDUs, read endpoints, joins/invites both ways (F1).
    federation_rooms: FederationRooms = field(init=False)

    def __post_init__(self) -> None:
        """Build the parts derived from the core services above (helper L4's area)."""
        self.account_data = AccountDataStore(self.db, self.streams["account_data"])
        self.directory = DirectoryHandler(self.config.server_name, self.events,
                                          DirectoryQueries(self.db), self.federation.client,
                                          self.rooms)
        self.typing = TypingHandler(self.streams["typing"], self.notifier, self.clock)
        self.receipts = ReceiptsHandler(
            self.events, ReceiptsStore(self.db, self.streams["receipts"]), self.directory,
            self.notifier, self.clock, lambda pdus, user_id: self.timeline.visible(pdus, user_id))
        self.read_markers = ReadMarkersHandler(self.account_data, self.receipts, self.notifier)
        self.filters = FilterHandler(FilterStore(self.db), self.config.server_name)
        reads = ClientReadStore(self.db)
        self.events.replaced_listeners.append(reads.remember_replaced)
        self.timeline = TimelineHandler(self.events, reads, self.clock,
                                        self.account_data)
        self.device_lists = DeviceListHandler(E2EStore(self.db), self.streams["device_lists"],
                                              self.notifier)
        self.e2e_keys = E2EKeysHandler(self.config.server_name, self.device_lists.store,
                                       self.device_lists, self.clock)
        # The clock is read on every call so tests can swap ``services.clock``.
        self.openid = OpenIdHandler(self.db, self.config.server_name, lambda: self.clock())
        self.hierarchy = HierarchyHandler(self)
        self.to_device = ToDeviceHandler(self.config.server_name, ToDeviceStore(self.db),
                                         self.streams["to_device"], self.notifier, self.clock)
        self.devices.on_deleted += [self.e2e_keys.on_devices_deleted,
                                    self.to_device.on_devices_deleted]
        # A new device or a renamed one changes what /keys/query shows to room peers.
        self.devices.on_changed.append(self.device_lists.record_change)
        self.account_data_handler = AccountDataHandler(self.account_data, self.notifier)
        self.presence = PresenceHandler(
            PresenceStore(self.db, self.streams["presence"]), self.device_lists.store,
            self.notifier, self.clock, self.config.presence_enabled)
        self.push = PushHandler(
            self.config.server_name, self.db, self.streams["push_rules"], self.notifier,
            self.events, self.clock,
            lambda pdus, user_id: self.timeline.serializer.serialize(pdus, Viewer(user_id)))
        self.rooms.pipeline.on_persisted.append(self.push.on_persisted)
        # Read receipts move the unread counts the push store keeps in memory.
        self.receipts.store.unread = self.push.actions.store.unread
        if self.db.dialect == "postgres":
            # Messages' push actions commit in the persister's statement: a woken /sync
            # then finds the unread counts without waiting for a write of their own.
            self.rooms.pipeline.before_persist.append(self.push.actions.plan)
            self.events.set_precommit(self.push.actions.precommit)
        self.rooms.pipeline.on_state_changed.append(self.push.actions.forget_room)
        self.devices.on_deleted.append(self.push.pushers.on_devices_deleted)
        self.sync = SyncHandler(self)
        self.device_lists.token_parser = device_list_positions
        self.sender, self.edu_handler, self.federation_queries = wire_federation_sending(self)
        self.federation_rooms = FederationRooms(self)
        self.federation_rooms.resident.relay = self.sender.relay_pdu
        self.rooms.remote = self.federation_rooms.remote

    @classmethod
    async def build(cls, config: HomeserverConfig, db: Database,
                    clock: Callable[[], int] = wall_clock_ms,
                    passwords: Passwords | None = None,
                    signing_keys: list[SigningKey] | None = None) -> Services:
        """Build every service on an open, migrated database.

        Without ``signing_keys`` (tests, tools) a fresh ephemeral key is generated.
        """
        if not signing_keys:
            signing_keys = [generate_signing_key("ephemeral")]
        streams = await Streams.load(db, instance_name="main", names=(*STREAMS, "backfill"))
        # This process is the events stream's only writer: each persist draws the next
        # one's first position meanwhile (PostgreSQL; see ``StreamIdGenerator``). A
        # split into several event writers must turn this off.
        streams["events"].reserve_ahead = True
        events = EventsStore(db, streams["events"], backfill_stream=streams["backfill"],
                             cache_factor=config.caches_global_factor)
        store = AccountStore(db)
        ratelimiters = Ratelimiters(config.rate_limit)
        passwords = passwords or Passwords(config.password_minimum_length)
        auth = AuthHandler(config, store, clock)
        devices = DeviceHandler(store, clock)
        metrics = None
        if config.enable_metrics:  # prometheus_client is imported only then
            from hs.http.metrics import HttpMetrics

            metrics = HttpMetrics()
            metrics.watch_pool(db.pool_stats)
            events.persist_listeners.append(metrics.count_persisted)
        notifier = Notifier()
        keys = list(signing_keys)
        rooms = RoomHandler(config, events, notifier, store, ratelimiters, lambda: keys, clock)
        return cls(
            config=config, db=db, store=store, ratelimiters=ratelimiters, passwords=passwords,
            auth=auth,
            uia=InteractiveAuth(config.server_name, store, passwords, ratelimiters, clock),
            devices=devices, accounts=AccountHandler(store, passwords, devices),
            login=LoginHandler(config, store, passwords, ratelimiters, clock),
            registration=RegistrationHandler(config, store, passwords, auth, devices, clock),
            profiles=ProfileHandler(store, config.server_name), metrics=metrics,
            streams=streams, events=events, notifier=notifier,
            federation=create_federation(config, db, signing_keys),
            rooms=rooms, signing_keys=keys, clock=clock)

    @classmethod
    async def open(cls, config: HomeserverConfig, **kwargs: object) -> Services:
        """Load the signing key, open (and migrate) the database, and build the services."""
        signing_keys = read_signing_key_file(config.signing_key_path)
        db = await open_database(config.database.to_database_config())
        try:
            services = await cls.build(config, db, signing_keys=signing_keys,
                                       **kwargs)  # type: ignore[arg-type]
        except BaseException:
            await db.close()
            raise
        return services

    async def close(self) -> None:
        self.typing.close()
        self.presence.close()
        await self.rooms.close()
        await self.sender.close()
        await self.federation.close()
        await self.streams.close()
        await self.db.close()


SERVICES = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def services_of_app(app: web.Application) -> Services:
    return app[SERVICES]


def create_app(services: Services,
               resources: frozenset[str] = frozenset({"client", "metrics", "health"}),
               *, x_forwarded: bool = False) -> web.Application:
    """An aiohttp app serving ``resources`` (Synapse listener resource names)."""
    from hs.api import add_routes

    app = web.Application(middlewares=[matrix_middleware],
                          client_max_size=services.config.max_request_body_size)
    app[SERVICES] = services
    if services.metrics is not None:
        app[METRICS] = services.metrics
    app[BODY_LIMIT] = services.config.max_request_body_size
    app[X_FORWARDED] = x_forwarded
    add_routes(app, resources)
    return app
