"""``/login`` (GET flows, POST), ``/refresh`` and ``/login/get_token``."""

from __future__ import annotations

from aiohttp import web

from hs.api import V1, client_route
from hs.app import services_of
from hs.handlers.uia import PASSWORD
from hs.http.errors import bad_json, forbidden, missing_param, unrecognized
from hs.http.request import get_bool, get_str, read_json_object
from hs.http.responses import json_response


async def get_flows(request: web.Request) -> web.Response:
    return json_response({"flows": services_of(request).login.flows()})


async def login(request: web.Request) -> web.Response:
    services = services_of(request)
    services.ratelimiters["rc_login.address"].check(request.remote)
    body = await read_json_object(request)
    device_id = get_str(body, "device_id", None)
    display_name = get_str(body, "initial_device_display_name", None)
    refreshable = get_bool(body, "refresh_token", False)
    user_id = await services.login.validate(body)
    device_id = await services.devices.create_or_reuse(user_id, device_id, display_name)
    session = await services.auth.issue_session(user_id, device_id, refreshable=refreshable)
    response = {"user_id": user_id, "device_id": device_id,
                "home_server": services.config.server_name, **session}
    if services.config.public_baseurl:
        response["well_known"] = {
            "m.homeserver": {"base_url": services.config.public_baseurl.rstrip("/")}}
    return json_response(response)


async def refresh(request: web.Request) -> web.Response:
    services = services_of(request)
    body = await read_json_object(request)
    token = body.get("refresh_token")
    if token is None:
        raise missing_param("refresh_token")
    if not isinstance(token, str):
        raise bad_json("'refresh_token' must be a string")
    return json_response(await services.auth.refresh(token))


async def get_login_token(request: web.Request) -> web.Response:
    """Spec ``/login/get_token``: another device logs in as this user (UIA protected)."""
    services = services_of(request)
    if not services.config.login_via_existing_session:
        raise unrecognized(404, "Login via an existing session is disabled")
    requester = await services.auth.get_requester(request)
    if requester.is_guest:
        raise forbidden("Guests cannot create login tokens")
    body = await read_json_object(request, allow_empty=True)
    result = await services.uia.check(request, body, [[PASSWORD]], user_id=requester.user_id,
                                      description="create a login token")
    await services.uia.finish(result)
    return json_response(await services.login.create_login_token(requester.user_id))


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/login", get_flows)
    client_route(app, "POST", "/login", login)
    client_route(app, "POST", "/refresh", refresh)
    client_route(app, "POST", "/login/get_token", get_login_token, V1)
