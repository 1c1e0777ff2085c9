"""``GET /_matrix/federation/v1/hierarchy/{roomId}`` (server-server "Spaces")."""

from __future__ import annotations

from aiohttp import web

from hs.api.client.hierarchy import query_bool
from hs.api.federation.common import PREFIX, authed
from hs.app import services_of
from hs.http.responses import json_response


async def get_hierarchy(request: web.Request) -> web.Response:
    origin, _ = await authed(request)
    result = await services_of(request).hierarchy.federation_hierarchy(
        origin, request.match_info["room_id"],
        suggested_only=query_bool(request, "suggested_only"))
    return json_response(result)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/v1/hierarchy/{room_id}", get_hierarchy)
