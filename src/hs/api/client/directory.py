"""Room aliases and the published room directory: ``/directory/room/{alias}``,
``/rooms/{roomId}/aliases``, ``/directory/list/room/{roomId}`` and ``/publicRooms``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.errors import bad_json, invalid_param
from hs.http.request import get_dict, get_str, read_json_object
from hs.http.responses import json_response


async def put_alias(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    room_id = get_str(body, "room_id")
    await services.directory.create_alias(requester, request.match_info["alias"], room_id)
    return json_response({})


async def get_alias(request: web.Request) -> web.Response:
    services = services_of(request)
    return json_response(await services.directory.resolve_alias(request.match_info["alias"]))


async def delete_alias(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    await services.directory.delete_alias(requester, request.match_info["alias"])
    return json_response({})


async def get_room_aliases(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    aliases = await services.directory.get_local_aliases(requester, request.match_info["room_id"])
    return json_response({"aliases": aliases})


async def get_visibility(request: web.Request) -> web.Response:
    services = services_of(request)
    visibility = await services.directory.get_visibility(request.match_info["room_id"])
    return json_response({"visibility": visibility})


async def put_visibility(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request, allow_empty=True)
    visibility = get_str(body, "visibility", "public")
    await services.directory.set_visibility(requester, request.match_info["room_id"],
                                            visibility)
    return json_response({})


def _query_limit(request: web.Request) -> int | None:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid_param("limit must be an integer") from None


async def get_public_rooms(request: web.Request) -> web.Response:
    """No access token needed (the spec lists no security for the GET)."""
    services = services_of(request)
    await services.auth.get_optional_requester(request, allow_guest=True)
    limit = _query_limit(request)
    since = request.query.get("since") or None
    server = request.query.get("server") or None
    remote: dict[str, Any] = {}
    if limit is not None:
        remote["limit"] = limit
    if since is not None:
        remote["since"] = since
    return json_response(await services.directory.public_rooms(
        limit=limit, since=since, server=server, remote_body=remote))


async def post_public_rooms(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request, allow_empty=True)
    limit = body.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise bad_json("'limit' must be an integer")
    since = get_str(body, "since", None) or None
    flt = get_dict(body, "filter") or {}
    search = get_str(flt, "generic_search_term", None)
    room_types = flt.get("room_types")
    if room_types is not None and (
        not isinstance(room_types, list)
        or not all(t is None or isinstance(t, str) for t in room_types)
    ):
        raise bad_json("'room_types' must be a list of strings or nulls")
    # An empty list filters nothing, as in Synapse (the spec only defines a missing one).
    room_types = room_types or None
    server = request.query.get("server") or None
    third_party = get_str(body, "third_party_instance_id", None)
    if third_party is not None and not body.get("include_all_networks") and (
            server is None or server == services.config.server_name):
        # No application service bridges a third-party network here.
        return json_response({"chunk": [], "total_room_count_estimate": 0})
    return json_response(await services.directory.public_rooms(
        limit=limit, since=since, search=search, room_types=room_types, server=server,
        remote_body=body))


def add_routes(app: web.Application) -> None:
    client_route(app, "PUT", "/directory/room/{alias}", put_alias)
    client_route(app, "GET", "/directory/room/{alias}", get_alias)
    client_route(app, "DELETE", "/directory/room/{alias}", delete_alias)
    client_route(app, "GET", "/rooms/{room_id}/aliases", get_room_aliases)
    client_route(app, "GET", "/directory/list/room/{room_id}", get_visibility)
    client_route(app, "PUT", "/directory/list/room/{room_id}", put_visibility)
    client_route(app, "GET", "/publicRooms", get_public_rooms)
    client_route(app, "POST", "/publicRooms", post_public_rooms)
