"""Membership endpoints: join (by ID or alias), invite, leave, forget, kick, ban, unban and
knock. Spec: data/api/client-server/{joining,inviting,leaving,kicking,banning,knocking}.yaml.
Logic in ``hs.handlers.rooms.membership``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.auth import Requester
from hs.http.request import get_str, read_json_object
from hs.http.responses import json_response


async def _body(request: web.Request, *, allow_guest: bool = False
                ) -> tuple[Requester, dict[str, Any], str | None]:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=allow_guest)
    body = await read_json_object(request, allow_empty=True)
    return requester, body, get_str(body, "reason", None)


async def join_by_id_or_alias(request: web.Request) -> web.Response:
    requester, _body_unused, reason = await _body(request, allow_guest=True)
    # via/server_name: the servers to join through when this server is not in the room.
    via = request.query.getall("via", []) + request.query.getall("server_name", [])
    room_id = await services_of(request).rooms.join(
        requester, request.match_info["room_id_or_alias"], reason, via=via)
    return json_response({"room_id": room_id})


async def join_by_id(request: web.Request) -> web.Response:
    requester, _body_unused, reason = await _body(request, allow_guest=True)
    room_id = await services_of(request).rooms.join(
        requester, request.match_info["room_id"], reason)
    return json_response({"room_id": room_id})


async def knock(request: web.Request) -> web.Response:
    requester, _body_unused, reason = await _body(request)
    via = request.query.getall("via", []) + request.query.getall("server_name", [])
    room_id = await services_of(request).rooms.knock(
        requester, request.match_info["room_id_or_alias"], reason, via=via)
    return json_response({"room_id": room_id})


async def invite(request: web.Request) -> web.Response:
    requester, body, reason = await _body(request)
    target = get_str(body, "user_id")
    await services_of(request).rooms.update_membership(
        requester, request.match_info["room_id"], target, "invite", reason)
    return json_response({})


async def leave(request: web.Request) -> web.Response:
    requester, _body_unused, reason = await _body(request, allow_guest=True)
    await services_of(request).rooms.update_membership(
        requester, request.match_info["room_id"], requester.user_id, "leave", reason)
    return json_response({})


async def forget(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    await services.rooms.forget(requester, request.match_info["room_id"])
    return json_response({})


async def kick(request: web.Request) -> web.Response:
    requester, body, reason = await _body(request)
    await services_of(request).rooms.kick(
        requester, request.match_info["room_id"], get_str(body, "user_id"), reason)
    return json_response({})


async def ban(request: web.Request) -> web.Response:
    requester, body, reason = await _body(request)
    await services_of(request).rooms.update_membership(
        requester, request.match_info["room_id"], get_str(body, "user_id"), "ban", reason)
    return json_response({})


async def unban(request: web.Request) -> web.Response:
    requester, body, reason = await _body(request)
    await services_of(request).rooms.unban(
        requester, request.match_info["room_id"], get_str(body, "user_id"), reason)
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "POST", "/join/{room_id_or_alias}", join_by_id_or_alias)
    client_route(app, "POST", "/knock/{room_id_or_alias}", knock)
    client_route(app, "POST", "/rooms/{room_id}/join", join_by_id)
    client_route(app, "POST", "/rooms/{room_id}/invite", invite)
    client_route(app, "POST", "/rooms/{room_id}/leave", leave)
    client_route(app, "POST", "/rooms/{room_id}/forget", forget)
    client_route(app, "POST", "/rooms/{room_id}/kick", kick)
    client_route(app, "POST", "/rooms/{room_id}/ban", ban)
    client_route(app, "POST", "/rooms/{room_id}/unban", unban)
