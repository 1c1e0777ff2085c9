"""Start the real homeserver app in-process and talk to it over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner
from argon2 import PasswordHasher

from hs.app import Services, create_app
from hs.config import parse_config
from hs.handlers.passwords import Passwords
from hs.storage.database import DatabaseConfig, open_database

SERVER_NAME = "test.local"
#: Cheap argon2 parameters: the tests hash many passwords, the algorithm is the same.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)


def make_config(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "server_name": SERVER_NAME,
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "registration_shared_secret": "s3cret",
        "rc_enabled": False,
        "trusted_key_servers": [],
    }
    data.update(overrides)
    return parse_config(data)


@dataclass
class Client:
    session: aiohttp.ClientSession
    base: str
    services: Services

    async def request(self, method: str, path: str, body: Any = None, *,
                      token: str | None = None, data: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": hdrs}
        if data is not None:
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text()
            try:
                parsed = await resp.json(content_type=None) if text else None
            except ValueError:
                parsed = text
            return resp.status, parsed

    async def register(self, username: str, password: str = "password1", **extra: Any
                       ) -> dict[str, Any]:
        """Register through the dummy-auth flow; returns the /register response."""
        body = {"username": username, "password": password, **extra}
        status, challenge = await self.request("POST", "/_matrix/client/v3/register", body)
        assert status == 401, challenge
        body["auth"] = {"type": "m.login.dummy", "session": challenge["session"]}
        status, result = await self.request("POST", "/_matrix/client/v3/register", body)
        assert status == 200, result
        return result

    async def login(self, user: str, password: str = "password1", **extra: Any
                    ) -> tuple[int, Any]:
        return await self.request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
            "password": password, **extra})


class ServerAsRun(TestServer):
    """aiohttp's test server, but running handlers as ``hs run`` does: not cancelled when
    their client disconnects (the test server's default is to cancel them)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


@contextlib.asynccontextmanager
async def running_server(database_config: DatabaseConfig, *, x_forwarded: bool = False,
                         **overrides: Any) -> AsyncIterator[Client]:
    """The client API app on 127.0.0.1; ``overrides`` are homeserver.yaml keys."""
    config = make_config(**overrides)
    db = await open_database(database_config)
    services = await Services.build(config, db, passwords=Passwords(config.password_minimum_length,
                                                              FAST_HASHER))
    server = ServerAsRun(create_app(services, x_forwarded=x_forwarded), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(session, str(server.make_url("")).rstrip("/"), services)
    finally:
        await server.close()
        await services.close()
