"""``GET /_matrix/client/v1/rooms/{roomId}/hierarchy`` (client-server "Spaces")."""

from __future__ import annotations

from aiohttp import web

from hs.api import V1, client_route
from hs.app import services_of
from hs.http.errors import invalid_param
from hs.http.responses import json_response


def query_bool(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise invalid_param(f"'{name}' must be true or false")
    return value == "true"


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid_param(f"'{name}' must be an integer") from None


async def get_hierarchy(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    result = await services.hierarchy.get_hierarchy(
        requester.user_id, request.match_info["room_id"],
        suggested_only=query_bool(request, "suggested_only"),
        limit=_query_int(request, "limit"), max_depth=_query_int(request, "max_depth"),
        from_token=request.query.get("from"))
    return json_response(result)


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/rooms/{room_id}/hierarchy", get_hierarchy, V1)
