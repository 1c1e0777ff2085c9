"""``GET /_matrix/client/v3/capabilities``: what this server lets the user do."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.core.room_versions import KNOWN_ROOM_VERSIONS
from hs.http.responses import json_response


async def capabilities(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.get_requester(request, allow_guest=True)
    config = services.config
    return json_response({"capabilities": {
        "m.change_password": {"enabled": config.password_login_enabled},
        "m.room_versions": {"default": config.default_room_version,
                            "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS}},
        "m.set_displayname": {"enabled": True},
        "m.set_avatar_url": {"enabled": True},
        "m.profile_fields": {"enabled": True},
        "m.3pid_changes": {"enabled": False},
        "m.get_login_token": {"enabled": config.login_via_existing_session},
    }})


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/capabilities", capabilities)
