"""Wiring: the ``Services`` container (config, database, handlers) and the aiohttp apps.

``Services`` is a plain dataclass built once per process; HTTP handlers reach it through
``services_of(request)``. Nothing here holds request state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from nacl.signing import SigningKey

from hs.config import HomeserverConfig
from hs.core.keys import generate_signing_key, read_signing_key_file
from hs.federation.setup import Federation, create_federation
from hs.handlers.accounts import AccountHandler
from hs.handlers.auth import AuthHandler
from hs.handlers.devices import DeviceHandler
from hs.handlers.login import LoginHandler
from hs.handlers.passwords import Passwords
from hs.handlers.profile import ProfileHandler
from hs.handlers.registration import RegistrationHandler
from hs.handlers.uia import InteractiveAuth
from hs.http.metrics import HttpMetrics
from hs.http.middleware import BODY_LIMIT, METRICS, X_FORWARDED, matrix_middleware
from hs.http.ratelimit import Ratelimiters
from hs.notifier import Notifier
from hs.storage.accounts import AccountStore
from hs.storage.database import Database, open_database
from hs.storage.events import EventsStore
from hs.storage.streams import STREAMS, Streams

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
    metrics: HttpMetrics
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
    clock: Callable[[], int] = wall_clock_ms
    #: Shared-secret registration nonces -> creation time (ms), like Synapse: in memory.
    admin_nonces: dict[str, int] = field(default_factory=dict)

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
        events = EventsStore(db, streams["events"], backfill_stream=streams["backfill"],
                             cache_factor=config.caches_global_factor)
        store = AccountStore(db)
        ratelimiters = Ratelimiters(config.rate_limit)
        passwords = passwords or Passwords(config.password_minimum_length)
        auth = AuthHandler(config, store, clock)
        devices = DeviceHandler(store, clock)
        metrics = HttpMetrics()
        metrics.watch_pool(db.pool_stats)
        return cls(
            config=config, db=db, store=store, ratelimiters=ratelimiters, passwords=passwords,
            auth=auth,
            uia=InteractiveAuth(config.server_name, store, passwords, ratelimiters, clock),
            devices=devices, accounts=AccountHandler(store, passwords, devices),
            login=LoginHandler(config, store, passwords, ratelimiters, clock),
            registration=RegistrationHandler(config, store, passwords, auth, devices, clock),
            profiles=ProfileHandler(store, config.server_name), metrics=metrics,
            streams=streams, events=events, notifier=Notifier(),
            federation=create_federation(config, db, signing_keys),
            signing_keys=list(signing_keys), clock=clock)

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
        await self.federation.close()
        await self.streams.close()
        await self.db.close()


SERVICES = web.AppKey("services", Services)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def create_app(services: Services,
               resources: frozenset[str] = frozenset({"client", "metrics", "health"}),
               *, x_forwarded: bool = False) -> web.Application:
    """An aiohttp app serving ``resources`` (Synapse listener resource names)."""
    from hs.api import add_routes

    app = web.Application(middlewares=[matrix_middleware],
                          client_max_size=services.config.max_request_body_size)
    app[SERVICES] = services
    app[METRICS] = services.metrics
    app[BODY_LIMIT] = services.config.max_request_body_size
    app[X_FORWARDED] = x_forwarded
    add_routes(app, resources)
    return app
