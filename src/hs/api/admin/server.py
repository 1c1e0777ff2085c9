"""``/_synapse/admin/v1/server_version`` (unauthenticated in Synapse too)."""

from __future__ import annotations

from aiohttp import web

import hs
from hs.http.responses import json_response


async def server_version(request: web.Request) -> web.Response:
    return json_response({"server_version": f"hs {hs.__version__}"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_synapse/admin/v1/server_version", server_version)
