"""In-process stand-ins for other servers' key endpoints (no network), for keyring tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from hs.core.keys import generate_signing_key
from hs.federation.client import FederationConnectionError
from hs.federation.key_server import KeyServer, _parse_post_criteria
from hs.federation.keyring import QUERY_PATH, SERVER_KEYS_PATH
from hs.federation.local_keys import LocalKeys, OldVerifyKey


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key_server(name: str, *versions: str, clock: Callable[[], float] | None = None,
               old: dict[str, OldVerifyKey] | None = None, **kw: Any) -> KeyServer:
    keys = [generate_signing_key(v) for v in versions or ("k1",)]
    local = LocalKeys(name, keys, old or {}, **kw)
    return KeyServer(local, clock=clock or Clock())


class FakeKeyClient:
    """Routes GET /_matrix/key/v2/server and POST /_matrix/key/v2/query to ``KeyServer``s.

    ``tamper[server]`` rewrites that server's key response; ``down`` servers fail.
    """

    def __init__(self, servers: dict[str, KeyServer], delay: float = 0.0) -> None:
        self.servers = servers
        self.delay = delay
        self.calls: list[tuple[str, str]] = []
        self.down: set[str] = set()
        self.tamper: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

    def _reach(self, method: str, destination: str) -> KeyServer:
        self.calls.append((method, destination))
        if destination in self.down or destination not in self.servers:
            raise FederationConnectionError(destination, "unreachable")
        return self.servers[destination]

    async def get_json(self, destination: str, path: str, query: Any = None, **kw: Any) -> Any:
        await asyncio.sleep(self.delay)
        server = self._reach("GET", destination)
        assert path == SERVER_KEYS_PATH
        body = orjson.loads(orjson.dumps(server.server_keys()))
        return self.tamper.get(destination, lambda b: b)(body)

    async def post_json(self, destination: str, path: str, content: Any, query: Any = None,
                        **kw: Any) -> Any:
        await asyncio.sleep(self.delay)
        server = self._reach("POST", destination)
        assert path == QUERY_PATH
        answer = await server.query(_parse_post_criteria(orjson.loads(orjson.dumps(content))))
        return orjson.loads(orjson.dumps({"server_keys": answer}))
