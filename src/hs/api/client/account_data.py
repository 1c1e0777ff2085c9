"""Client config and room tags: ``/user/{userId}/account_data/{type}``,
``/user/{userId}/rooms/{roomId}/account_data/{type}`` and
``/user/{userId}/rooms/{roomId}/tags[/{tag}]`` (account-data.yaml, tags.yaml)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def put_global(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    m = request.match_info
    body = await read_json_object(request)
    await services.account_data_handler.set_global(requester.user_id, m["user_id"], m["type"],
                                                   body)
    return json_response({})


async def get_global(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    m = request.match_info
    return json_response(await services.account_data_handler.get_global(
        requester.user_id, m["user_id"], m["type"]))


async def put_room(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    m = request.match_info
    body = await read_json_object(request)
    await services.account_data_handler.set_room(requester.user_id, m["user_id"], m["room_id"],
                                                 m["type"], body)
    return json_response({})


async def get_room(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    m = request.match_info
    return json_response(await services.account_data_handler.get_room(
        requester.user_id, m["user_id"], m["room_id"], m["type"]))


async def get_tags(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    m = request.match_info
    return json_response(await services.account_data_handler.get_tags(
        requester.user_id, m["user_id"], m["room_id"]))


async def put_tag(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    m = request.match_info
    body = await read_json_object(request, allow_empty=True)
    await services.account_data_handler.put_tag(requester.user_id, m["user_id"], m["room_id"],
                                                m["tag"], body)
    return json_response({})


async def delete_tag(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    m = request.match_info
    await services.account_data_handler.delete_tag(requester.user_id, m["user_id"],
                                                   m["room_id"], m["tag"])
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "PUT", "/user/{user_id}/account_data/{type}", put_global)
    client_route(app, "GET", "/user/{user_id}/account_data/{type}", get_global)
    client_route(app, "PUT", "/user/{user_id}/rooms/{room_id}/account_data/{type}", put_room)
    client_route(app, "GET", "/user/{user_id}/rooms/{room_id}/account_data/{type}", get_room)
    client_route(app, "GET", "/user/{user_id}/rooms/{room_id}/tags", get_tags)
    client_route(app, "PUT", "/user/{user_id}/rooms/{room_id}/tags/{tag}", put_tag)
    client_route(app, "DELETE", "/user/{user_id}/rooms/{room_id}/tags/{tag}", delete_tag)
