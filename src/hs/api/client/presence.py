"""``PUT/GET /presence/{userId}/status`` (presence.yaml)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.errors import missing_param
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def put_status(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    if "presence" not in body:
        raise missing_param("presence")
    kwargs = {"status_msg": body["status_msg"]} if "status_msg" in body else {}
    await services.presence.set_status(requester.user_id, request.match_info["user_id"],
                                       body["presence"], **kwargs)
    return json_response({})


async def get_status(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    return json_response(await services.presence.get_status(
        requester.user_id, request.match_info["user_id"]))


def add_routes(app: web.Application) -> None:
    client_route(app, "PUT", "/presence/{user_id}/status", put_status)
    client_route(app, "GET", "/presence/{user_id}/status", get_status)
