"""``GET /pushers`` and ``POST /pushers/set`` (pusher.yaml). Stored only: delivery to push
gateways is not implemented."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def get_pushers(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    return json_response({"pushers": await services.push.pushers.get_pushers(
        requester.user_id)})


async def set_pusher(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    await services.push.pushers.set_pusher(requester.user_id, requester.device_id, body)
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/pushers", get_pushers)
    client_route(app, "POST", "/pushers/set", set_pusher)
