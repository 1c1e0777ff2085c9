"""``POST /user/{userId}/openid/request_token`` (openid.yaml)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def request_token(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    await read_json_object(request, allow_empty=True)  # the body is `{}`; nothing to read
    return json_response(await services.openid.request_token(
        requester.user_id, request.match_info["user_id"]))


def add_routes(app: web.Application) -> None:
    client_route(app, "POST", "/user/{user_id}/openid/request_token", request_token)
