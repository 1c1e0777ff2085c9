"""``GET /_matrix/federation/v1/openid/userinfo`` (server-server openid.yaml).

Called by integration servers, not homeservers: the request is authenticated by the OpenID
token in the query string, not by X-Matrix."""

from __future__ import annotations

from aiohttp import web

from hs.api.federation.common import PREFIX
from hs.app import services_of
from hs.http.errors import MatrixError
from hs.http.responses import json_response


async def userinfo(request: web.Request) -> web.Response:
    token = request.query.get("access_token")
    if not token:
        raise MatrixError(401, "M_UNKNOWN_TOKEN", "Missing access token")
    return json_response(await services_of(request).openid.userinfo(token))


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/v1/openid/userinfo", userinfo)
