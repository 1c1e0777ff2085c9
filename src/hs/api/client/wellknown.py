"""``/.well-known/matrix/client`` and ``/server`` (server discovery), when configured."""

from __future__ import annotations

from urllib.parse import urlparse

from aiohttp import web

from hs.app import services_of
from hs.http.errors import not_found
from hs.http.responses import json_response


async def client(request: web.Request) -> web.Response:
    baseurl = services_of(request).config.public_baseurl
    if not baseurl:
        raise not_found("No .well-known configured (set public_baseurl)")
    return json_response({"m.homeserver": {"base_url": baseurl.rstrip("/")}})


async def server(request: web.Request) -> web.Response:
    config = services_of(request).config
    if not (config.serve_server_wellknown and config.public_baseurl):
        raise not_found("No .well-known configured (set serve_server_wellknown)")
    parsed = urlparse(config.public_baseurl)
    port = parsed.port or 443
    return json_response({"m.server": f"{parsed.hostname}:{port}"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/matrix/client", client)
    app.router.add_get("/.well-known/matrix/server", server)
