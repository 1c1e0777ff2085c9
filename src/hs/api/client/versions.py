"""``GET /_matrix/client/versions`` (no authentication)."""

from __future__ import annotations

from aiohttp import web

from hs.http.responses import json_response

SUPPORTED_VERSIONS = ["r0.5.0", "r0.6.0", "r0.6.1"] + [f"v1.{n}" for n in range(1, 20)]


async def versions(request: web.Request) -> web.Response:
    return json_response({"versions": SUPPORTED_VERSIONS, "unstable_features": {}})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_matrix/client/versions", versions)
