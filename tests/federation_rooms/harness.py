"""Two (or more) real homeservers in one test process, federating over TLS on 127.0.0.1.

Each server is named ``127.0.0.1:<port>`` (an IP literal with a port: server discovery
goes straight to that address, no well-known or SRV), serves the ``client``,
``federation`` and ``keys`` resources on one TLS listener with a throwaway certificate,
and federates with ``federation_verify_certificates: false`` and an empty
``ip_range_blacklist`` (loopback allowed). No test-only knob in the federation client is
needed: the real https path is exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from tests.federation.helpers import make_ca, server_ssl_context
from tests.server.harness import FAST_HASHER, Client, make_config

from hs.app import Services, create_app
from hs.handlers.passwords import Passwords
from hs.storage.database import DatabaseConfig, open_database

RESOURCES = frozenset({"client", "federation", "keys"})


@dataclass
class Server:
    name: str
    client: Client

    @property
    def services(self) -> Services:
        return self.client.services

    async def user(self, localpart: str) -> tuple[str, str]:
        """Register ``localpart``; returns (user ID, access token)."""
        result = await self.client.register(localpart)
        return result["user_id"], result["access_token"]

    async def call(self, method: str, path: str, body: Any = None, *, token: str
                   ) -> tuple[int, Any]:
        return await self.client.request(method, path, body, token=token)


@contextlib.asynccontextmanager
async def homeserver(db_config: DatabaseConfig, tmp: Path, **overrides: Any
                     ) -> AsyncIterator[Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    name = f"127.0.0.1:{port}"
    config = make_config(server_name=name, ip_range_blacklist=[],
                         federation_verify_certificates=False, **overrides)
    db = await open_database(db_config)
    services = await Services.build(config, db, passwords=Passwords(
        config.password_minimum_length, FAST_HASHER))
    ca = make_ca(tmp)
    ctx = server_ssl_context(ca, tmp, ["127.0.0.1"])
    runner = web.AppRunner(create_app(services, RESOURCES), access_log=None,
                           shutdown_timeout=0.1)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=ctx)
    await site.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as s:
            yield Server(name, Client(s, f"https://{name}", services))
    finally:
        await runner.cleanup()
        await services.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def two_servers(db_a: DatabaseConfig, db_b: DatabaseConfig, tmp: Path
                      ) -> AsyncIterator[tuple[Server, Server]]:
    (tmp / "a").mkdir(exist_ok=True)
    (tmp / "b").mkdir(exist_ok=True)
    async with homeserver(db_a, tmp / "a") as a, homeserver(db_b, tmp / "b") as b:
        yield a, b
