"""``/logout`` (this device) and ``/logout/all`` (every device)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.responses import json_response


async def logout(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    await services.devices.delete(requester.user_id, [requester.device_id])
    return json_response({})


async def logout_all(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    await services.devices.delete_all_except(requester.user_id, None)
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "POST", "/logout", logout)
    client_route(app, "POST", "/logout/all", logout_all)
