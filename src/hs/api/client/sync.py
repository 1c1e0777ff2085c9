"""``GET /sync`` (client-server "Syncing", sync.yaml)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.sync import SyncParams
from hs.http.errors import invalid_param
from hs.http.responses import json_response


def _timeout(value: str | None) -> int:
    if value is None or value == "":
        return 0
    try:
        timeout = int(value)
    except ValueError:
        raise invalid_param("timeout must be an integer (milliseconds)") from None
    if timeout < 0:
        raise invalid_param("timeout must not be negative")
    return timeout


def _bool(value: str | None, name: str) -> bool:
    if value is None or value == "" or value == "false":
        return False
    if value == "true":
        return True
    raise invalid_param(f"{name} must be 'true' or 'false'")


async def get_sync(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    query = request.query
    params = SyncParams(
        since=query.get("since") or None,
        timeout_ms=_timeout(query.get("timeout")),
        full_state=_bool(query.get("full_state"), "full_state"),
        set_presence=query.get("set_presence") or "online",
        filter_param=query.get("filter"),
        # aiohttp drops the transport when the connection is lost.
        client_gone=lambda: request.transport is None,
    )
    return json_response(await services.sync.sync(requester, params))


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/sync", get_sync)
