"""A recording destination homeserver on 127.0.0.1 (TLS) that authenticates every
``/send`` with the real X-Matrix code and keyring, plus a sender pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from tests.federation.helpers import app_with, make_ca, make_client, server_ssl_context, tls_server

from hs.core.json_decode import decode_json
from hs.core.keys import generate_signing_key
from hs.federation.auth import FEDERATION_AUTH, FederationAuthenticator, authenticate_request
from hs.federation.key_server import KeyServer, setup_key_routes
from hs.federation.keyring import Keyring
from hs.federation.local_keys import LocalKeys
from hs.federation.sender import FederationSender, QueuedPdu, RetryPolicy
from hs.storage.database import Database, DatabaseConfig, open_database
from hs.storage.federation import FederationSenderStore
from hs.storage.to_device import ToDeviceStore

ORIGIN_KEY = generate_signing_key("o1")
FAST = RetryPolicy(min_interval_ms=50, max_interval_ms=200, jitter=0.1)


@dataclass
class Recorder:
    """What the destination received, and how it should answer."""

    txns: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    #: Status codes to answer with before accepting (popped one per request).
    fail_with: list[int] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    delay: float = 0.0

    async def send(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = decode_json(raw)
        origin = await authenticate_request(request, body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail_with:
                status = self.fail_with.pop(0)
                return web.json_response({"errcode": "M_UNKNOWN", "error": "down"},
                                         status=status)
            self.origins.append(origin)
            self.txns.append((request.match_info["txn"], body))
            return web.json_response({"pdus": {p["event_id"]: {} for p in body["pdus"]}})
        finally:
            self.in_flight -= 1

    def pdu_ids(self) -> list[str]:
        return [p["event_id"] for _, body in self.txns for p in body["pdus"]]

    def edus(self) -> list[dict[str, Any]]:
        return [e for _, body in self.txns for e in body["edus"]]


@dataclass
class Env:
    origin: str
    dest: str
    dead: str
    db: Database
    recorder: Recorder
    events: dict[str, dict[str, Any]]
    make_sender: Callable[..., FederationSender]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def env(tmp_path: Path, database_config: DatabaseConfig) -> AsyncIterator[Env]:
    ca = make_ca(tmp_path)
    ctx = server_ssl_context(ca, tmp_path, ["origin.test", "dest.test", "dead.test",
                                            "127.0.0.1"])
    hosts = {n: ["127.0.0.1"] for n in ("origin.test", "dest.test", "dead.test")}
    recorder = Recorder()
    origin_app = app_with({})
    key_server = KeyServer(LocalKeys("placeholder", [ORIGIN_KEY]))
    setup_key_routes(origin_app, key_server)
    dest_app = app_with({"/_matrix/federation/v1/send/{txn}": recorder.send})
    dest_client = make_client("placeholder", generate_signing_key("d1"), ca, hosts)
    authenticator = FederationAuthenticator(
        "placeholder", Keyring(None, dest_client, min_refetch_interval_ms=0))
    dest_app[FEDERATION_AUTH] = authenticator
    db = await open_database(database_config)
    clients = []
    senders: list[FederationSender] = []
    events: dict[str, dict[str, Any]] = {}

    async def pdu_source(ids: Any) -> dict[str, dict[str, Any]]:
        return {i: events[i] for i in ids if i in events}

    async with tls_server(origin_app, ctx) as o_port, tls_server(dest_app, ctx) as d_port:
        origin, dest = f"origin.test:{o_port}", f"dest.test:{d_port}"
        key_server.local_keys = LocalKeys(origin, [ORIGIN_KEY])
        dest_client.server_name = authenticator.server_name = dest

        def make_sender(**kw: Any) -> FederationSender:
            client = make_client(origin, ORIGIN_KEY, ca, hosts)
            clients.append(client)
            kw.setdefault("policy", FAST)
            sender = FederationSender(origin, client, FederationSenderStore(db), pdu_source,
                                      to_device=ToDeviceStore(db), request_timeout=5, **kw)
            senders.append(sender)
            return sender

        try:
            yield Env(origin, dest, f"dead.test:{free_port()}", db, recorder, events,
                      make_sender)
        finally:
            for sender in senders:
                await sender.close()
            for client in clients:
                await client.close()
            await dest_client.close()
            await db.close()


def make_pdus(e: Env, room_id: str, count: int, start: int = 1) -> list[QueuedPdu]:
    """Fake PDUs (the recording server does not check them); also loadable for catch-up."""
    out = []
    for i in range(start, start + count):
        event_id = f"${room_id[1:4]}{i}"
        data = {"event_id": event_id, "room_id": room_id, "type": "m.room.message",
                "content": {"body": str(i)}}
        e.events[event_id] = data
        out.append(QueuedPdu(event_id, i, data))
    return out


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


REMOTE = "remote.test"
REMOTE_KEY = generate_signing_key("r1")


class RecordingClient:
    """Stands in for the FederationClient of an in-process server: records the
    transactions its sender would put on the wire (the HTTP path is tested above)."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def is_destination_allowed(self, destination: str) -> bool:
        return True

    async def put_json(self, destination: str, path: str, content: Any, **kw: Any) -> Any:
        self.sent.append((destination, content))
        return {"pdus": {}}

    def edus(self, edu_type: str) -> list[dict[str, Any]]:
        return [e["content"] for _, body in self.sent for e in body["edus"]
                if e["edu_type"] == edu_type]

    def pdus(self) -> list[dict[str, Any]]:
        return [p for _, body in self.sent for p in body["pdus"]]


@contextlib.asynccontextmanager
async def homeserver(database_config: DatabaseConfig, **overrides: Any
                     ) -> AsyncIterator[Any]:
    """The real app (client API plus ``hs.api.federation_keys``) on 127.0.0.1, with
    ``REMOTE``'s signing key already known to the keyring's store and the sender's
    transactions recorded by a ``RecordingClient`` (``services.sender.ctx.client``)."""
    import time

    import aiohttp
    from aiohttp.test_utils import TestServer
    from tests.server.harness import FAST_HASHER, Client, make_config

    from hs.api import federation_keys
    from hs.app import Services, create_app
    from hs.handlers.passwords import Passwords
    from hs.storage.server_keys import ServerKeysStore
    from hs.storage.server_keys.store import StoredKey

    config = make_config(**overrides)
    db = await open_database(database_config)
    services = await Services.build(config, db, passwords=Passwords(
        config.password_minimum_length, FAST_HASHER))
    # Transactions to REMOTE are recorded, never sent: no DNS lookup of a test name.
    services.sender.ctx.client = RecordingClient(config.server_name)
    now = int(time.time() * 1000)
    await ServerKeysStore(db).store_server_keys(
        REMOTE, REMOTE, now,
        {f"ed25519:{REMOTE_KEY.version}": StoredKey(bytes(REMOTE_KEY.verify_key),
                                                    now + 86_400_000, None)}, None, 0)
    app = create_app(services)
    federation_keys.add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(session, str(server.make_url("")).rstrip("/"), services)
    finally:
        await server.close()
        await services.close()
