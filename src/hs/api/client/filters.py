"""``POST /user/{userId}/filter`` and ``GET /user/{userId}/filter/{filterId}``."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def post_filter(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    filter_id = await services.filters.upload(
        requester.user_id, request.match_info["user_id"], body)
    return json_response({"filter_id": filter_id})


async def get_filter(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    return json_response(await services.filters.get_json(
        requester.user_id, request.match_info["user_id"], request.match_info["filter_id"]))


def add_routes(app: web.Application) -> None:
    client_route(app, "POST", "/user/{user_id}/filter", post_filter)
    client_route(app, "GET", "/user/{user_id}/filter/{filter_id}", get_filter)
