"""``/account/whoami``, ``/account/password`` and ``/account/deactivate``."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.uia import PASSWORD
from hs.http.errors import forbidden
from hs.http.request import get_bool, get_str, read_json_object
from hs.http.responses import json_response


async def whoami(request: web.Request) -> web.Response:
    requester = await services_of(request).auth.get_requester(request, allow_guest=True)
    return json_response({"user_id": requester.user_id, "device_id": requester.device_id,
                          "is_guest": requester.is_guest})


async def change_password(request: web.Request) -> web.Response:
    """UIA-protected; by default every other device is logged out (spec ``logout_devices``)."""
    services = services_of(request)
    if not services.config.password_login_enabled:
        raise forbidden("Password changes are disabled on this server")
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    new_password = get_str(body, "new_password")
    logout_devices = get_bool(body, "logout_devices", True)
    services.passwords.check_policy(new_password)
    result = await services.uia.check(request, body, [[PASSWORD]], user_id=requester.user_id,
                                      description="change your password")
    await services.accounts.set_password(requester.user_id, new_password,
                                         logout_devices=logout_devices,
                                         keep_device_id=requester.device_id)
    await services.uia.finish(result)
    return json_response({})


async def deactivate(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request, allow_empty=True)
    get_bool(body, "erase", False)
    get_str(body, "id_server", None)
    result = await services.uia.check(request, body, [[PASSWORD]], user_id=requester.user_id,
                                      description="deactivate your account")
    await services.accounts.deactivate(requester.user_id)
    await services.uia.finish(result)
    return json_response({"id_server_unbind_result": "no-support"})


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/account/whoami", whoami)
    client_route(app, "POST", "/account/password", change_password)
    client_route(app, "POST", "/account/deactivate", deactivate)
