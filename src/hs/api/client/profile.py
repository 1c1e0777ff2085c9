"""Profiles: ``GET /profile/{userId}`` and GET/PUT/DELETE of one field (displayname …)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import Services, services_of
from hs.handlers.auth import Requester
from hs.http.errors import missing_param
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def get_profile(request: web.Request) -> web.Response:
    services = services_of(request)
    return json_response(await services.profiles.get_profile(request.match_info["user_id"]))


async def get_field(request: web.Request) -> web.Response:
    services = services_of(request)
    return json_response(await services.profiles.get_field(request.match_info["user_id"],
                                                           request.match_info["field"]))


async def put_field(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    field = request.match_info["field"]
    body = await read_json_object(request)
    if field not in body:
        raise missing_param(field)
    await services.profiles.set_field(requester.user_id, request.match_info["user_id"], field,
                                      body[field])
    await _propagate(services, requester, field)
    return json_response({})


async def delete_field(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    await services.profiles.delete_field(requester.user_id, request.match_info["user_id"],
                                         request.match_info["field"])
    await _propagate(services, requester, request.match_info["field"])
    return json_response({})


async def _propagate(services: Services, requester: Requester, field: str) -> None:
    """Member lists show the profile from each room's member event (as with Synapse): a
    name or avatar change is sent to every joined room as a fresh join event."""
    if field in ("displayname", "avatar_url"):
        await services.rooms.propagate_profile(requester)


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/profile/{user_id}", get_profile)
    client_route(app, "GET", "/profile/{user_id}/{field}", get_field)
    client_route(app, "PUT", "/profile/{user_id}/{field}", put_field)
    client_route(app, "DELETE", "/profile/{user_id}/{field}", delete_field)
