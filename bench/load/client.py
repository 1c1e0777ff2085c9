"""A minimal Matrix client-server API client for load generation (aiohttp, pooled).

Only what the scenarios need, and nothing server-specific: any homeserver that speaks the
client-server API can be measured. An endpoint the server does not implement (404 or 405 with
``M_UNRECOGNIZED``, or a bare 404) raises :class:`Unsupported`, so the scenario can be reported
as "unsupported by target" instead of failing the run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

CS = "/_matrix/client/v3"
#: Wall-clock ceiling of any single request; long-polls add their own timeout on top.
REQUEST_TIMEOUT = 60.0
MAX_RETRIES_429 = 5


class Unsupported(Exception):
    """The target does not implement this endpoint."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"unsupported by target: {endpoint}")
        self.endpoint = endpoint


class MatrixError(Exception):
    """A non-2xx answer we did not expect."""

    def __init__(self, status: int, body: Any, endpoint: str) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"{endpoint}: HTTP {status} {errcode or ''} {error or ''}".strip())
        self.status, self.errcode = status, errcode


@dataclass(frozen=True)
class User:
    user_id: str
    access_token: str
    device_id: str | None = None


def _is_unrecognized(status: int, body: Any) -> bool:
    if status not in (404, 405):
        return False
    if isinstance(body, dict):
        return body.get("errcode") == "M_UNRECOGNIZED"
    return status == 404  # a router's plain "404: Not Found"


class Client:
    """Thin request helper; ``latencies`` is not kept here - scenarios time what they need."""

    def __init__(self, base_url: str, connections: int = 200) -> None:
        self.base_url = base_url.rstrip("/")
        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections,
                                         force_close=False, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(
            connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
            timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, *, user: User | None = None,
                      body: Any = None, params: dict[str, str] | None = None,
                      timeout: float = REQUEST_TIMEOUT, ok: tuple[int, ...] = (200,),
                      endpoint: str | None = None) -> tuple[int, Any]:
        """One request; returns (status, decoded JSON). Retries 429 a bounded number of times."""
        endpoint = endpoint or f"{method} {path.split('?')[0]}"
        headers = {"Authorization": f"Bearer {user.access_token}"} if user else {}
        data = orjson.dumps(body) if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(MAX_RETRIES_429 + 1):
            async with self.session.request(
                    method, self.base_url + path, data=data, params=params, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.read()
                status = resp.status
            try:
                decoded: Any = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                decoded = raw.decode(errors="replace")
            if status in ok:
                return status, decoded
            if _is_unrecognized(status, decoded):
                raise Unsupported(endpoint)
            if status == 429 and attempt < MAX_RETRIES_429 and isinstance(decoded, dict):
                await asyncio.sleep(min(int(decoded.get("retry_after_ms", 500)), 5000) / 1000)
                continue
            raise MatrixError(status, decoded, endpoint)
        raise AssertionError("unreachable")

    # -- endpoints ----------------------------------------------------------------------

    async def register(self, username: str, password: str) -> User:
        """Register with the m.login.dummy flow (one 401 round trip for the session)."""
        path = f"{CS}/register"
        body: dict[str, Any] = {"username": username, "password": password,
                                "initial_device_display_name": "bench"}
        status, reply = await self.request("POST", path, body=body, ok=(200, 401))
        if status == 401:
            body["auth"] = {"type": "m.login.dummy", "session": reply.get("session")}
            _, reply = await self.request("POST", path, body=body)
        return User(reply["user_id"], reply["access_token"], reply.get("device_id"))

    async def create_room(self, user: User, name: str) -> str:
        _, reply = await self.request("POST", f"{CS}/createRoom", user=user,
                                      body={"preset": "public_chat", "name": name})
        return str(reply["room_id"])

    async def join(self, user: User, room_id: str) -> None:
        await self.request("POST", f"{CS}/join/{quote(room_id, safe='')}", user=user, body={},
                           endpoint="POST /join/{roomIdOrAlias}")

    async def send_text(self, user: User, room_id: str, text: str,
                        extra: dict[str, Any] | None = None) -> str:
        txn = uuid.uuid4().hex
        content: dict[str, Any] = {"msgtype": "m.text", "body": text, **(extra or {})}
        _, reply = await self.request(
            "PUT", f"{CS}/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}",
            user=user, body=content, endpoint="PUT /rooms/{roomId}/send/{eventType}/{txnId}")
        return str(reply["event_id"])

    async def messages(self, user: User, room_id: str, *, from_token: str | None,
                       limit: int) -> dict[str, Any]:
        params = {"dir": "b", "limit": str(limit)}
        if from_token is not None:
            params["from"] = from_token
        _, reply = await self.request("GET", f"{CS}/rooms/{quote(room_id, safe='')}/messages",
                                      user=user, params=params,
                                      endpoint="GET /rooms/{roomId}/messages")
        return dict(reply)

    async def sync(self, user: User, *, since: str | None = None, timeout_ms: int = 0,
                   filter_json: str | None = None) -> dict[str, Any]:
        params = {"timeout": str(timeout_ms)}
        if since is not None:
            params["since"] = since
        if filter_json is not None:
            params["filter"] = filter_json
        _, reply = await self.request("GET", f"{CS}/sync", user=user, params=params,
                                      timeout=REQUEST_TIMEOUT + timeout_ms / 1000,
                                      endpoint="GET /sync")
        return dict(reply)


async def timed(coro: Any) -> tuple[Any, float]:
    """Await ``coro``; return (result, seconds it took)."""
    start = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - start
