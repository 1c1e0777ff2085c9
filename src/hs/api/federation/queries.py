"""Profile and alias queries, the public room directory and the server version
(server-server API "Querying for information", "Public Room Directory")."""

from __future__ import annotations

from aiohttp import web

from hs import __version__ as hs_version
from hs.api.federation.common import PREFIX, authed, query_str
from hs.app import services_of
from hs.handlers.directory import parse_alias
from hs.http.errors import invalid_param, not_found
from hs.http.request import get_str
from hs.http.responses import json_response

PROFILE_FIELDS = ("displayname", "avatar_url")


async def query_profile(request: web.Request) -> web.Response:
    await authed(request)
    user_id = query_str(request, "user_id")
    assert user_id is not None
    field = query_str(request, "field", required=False)
    if field is not None and field not in PROFILE_FIELDS:
        raise invalid_param(f"Unknown profile field {field!r}")
    services = services_of(request)
    if not services.profiles.is_local(user_id):
        raise invalid_param("The user is not on this server")
    profile = await services.profiles.get_profile(user_id)
    if field is not None:
        if field not in profile:
            raise not_found(f"Profile field {field} not set")
        return json_response({field: profile[field]})
    return json_response({k: v for k, v in profile.items() if k in PROFILE_FIELDS})


async def query_directory(request: web.Request) -> web.Response:
    await authed(request)
    alias = query_str(request, "room_alias")
    assert alias is not None
    services = services_of(request)
    _, domain = parse_alias(alias)
    if domain != services.config.server_name:
        raise not_found(f"Room alias {alias} not found")
    return json_response(await services.directory.resolve_alias(alias))


async def public_rooms_get(request: web.Request) -> web.Response:
    await authed(request)
    limit = request.query.get("limit")
    try:
        parsed = int(limit) if limit is not None else None
    except ValueError:
        raise invalid_param("'limit' must be an integer") from None
    return json_response(await services_of(request).directory.public_rooms(
        limit=parsed, since=request.query.get("since")))


async def public_rooms_post(request: web.Request) -> web.Response:
    _, body = await authed(request, body=True)
    limit = body.get("limit")
    if limit is not None and type(limit) is not int:
        raise invalid_param("'limit' must be an integer")
    flt = body.get("filter") if isinstance(body.get("filter"), dict) else {}
    search = flt.get("generic_search_term")
    room_types = flt.get("room_types")
    if room_types is not None and not isinstance(room_types, list):
        raise invalid_param("'room_types' must be an array")
    return json_response(await services_of(request).directory.public_rooms(
        limit=limit, since=get_str(body, "since", None),
        search=search if isinstance(search, str) else None, room_types=room_types))


async def version(request: web.Request) -> web.Response:
    return json_response({"server": {"name": "hs", "version": hs_version}})


def add_routes(app: web.Application) -> None:
    v1 = PREFIX + "/v1"
    app.router.add_get(v1 + "/query/profile", query_profile)
    app.router.add_get(v1 + "/query/directory", query_directory)
    app.router.add_get(v1 + "/publicRooms", public_rooms_get)
    app.router.add_post(v1 + "/publicRooms", public_rooms_post)
    app.router.add_get(v1 + "/version", version)
