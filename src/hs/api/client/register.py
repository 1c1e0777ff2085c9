"""``/register``, ``/register/available`` and registration-token validity."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hs.api import V1, client_route
from hs.app import Services, services_of
from hs.handlers.uia import DUMMY, REGISTRATION_TOKEN
from hs.http.errors import MatrixError, forbidden, invalid_param, missing_param
from hs.http.request import get_bool, get_str, read_json_object
from hs.http.responses import json_response


def _flows(services: Services) -> list[list[str]]:
    return [[REGISTRATION_TOKEN]] if services.config.registration_requires_token else [[DUMMY]]


async def register(request: web.Request) -> web.Response:
    services = services_of(request)
    config = services.config
    kind = request.query.get("kind", "user")
    if kind not in ("user", "guest"):
        raise invalid_param("kind must be 'user' or 'guest'")
    body = await read_json_object(request)
    if kind == "guest":
        return await _register_guest(services, request, body)
    if not config.enable_registration:
        raise forbidden("Registration has been disabled")

    # Fail fast on a bad or taken username before making the client do UIA.
    username = get_str(body, "username", None)
    if username is not None:
        await services.registration.check_available(
            services.registration.canonical_localpart(username))
    password = get_str(body, "password", None)
    if password is not None:
        services.passwords.check_policy(password)
    _validate_optional_fields(body)

    result = await services.uia.check(request, body, _flows(services),
                                      description="register a new account")
    params = result.clientdict
    _validate_optional_fields(params)
    username = get_str(params, "username", None)
    localpart = services.registration.canonical_localpart(username) if username else None
    password = get_str(params, "password", None)
    if password is None:
        raise missing_param("password")
    services.passwords.check_policy(password)
    services.ratelimiters["rc_registration"].check(request.remote)
    user_id = await services.registration.register(
        localpart, password, registration_token=result.completed.get(REGISTRATION_TOKEN))
    await services.uia.finish(result)
    if get_bool(params, "inhibit_login", False):
        return json_response({"user_id": user_id, "home_server": config.server_name})
    response = await services.registration.login_new_user(
        user_id, get_str(params, "device_id", None),
        get_str(params, "initial_device_display_name", None),
        refreshable=get_bool(params, "refresh_token", False))
    return json_response(response)


def _validate_optional_fields(body: dict[str, Any]) -> None:
    """Type-check the optional fields so a wrong type is M_BAD_JSON, whenever it is sent."""
    for key in ("username", "password", "device_id", "initial_device_display_name"):
        get_str(body, key, None)
    for key in ("inhibit_login", "refresh_token"):
        get_bool(body, key, False)


async def _register_guest(services: Services, request: web.Request,
                          body: dict[str, Any]) -> web.Response:
    """Guests skip UIA; per the spec every field but the display name is ignored."""
    if not services.config.allow_guest_access:
        raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access is disabled")
    services.ratelimiters["rc_registration"].check(request.remote)
    user_id = await services.registration.register(None, None, is_guest=True)
    display_name = body.get("initial_device_display_name")
    response = await services.registration.login_new_user(
        user_id, None, display_name if isinstance(display_name, str) else None,
        refreshable=False)
    return json_response(response)


async def available(request: web.Request) -> web.Response:
    services = services_of(request)
    services.ratelimiters["rc_registration"].check(request.remote, update=False)
    username = request.query.get("username")
    if not username:
        raise missing_param("username")
    await services.registration.check_available(
        services.registration.canonical_localpart(username))
    return json_response({"available": True})


async def token_validity(request: web.Request) -> web.Response:
    services = services_of(request)
    services.ratelimiters["rc_registration_token_validity"].check(request.remote)
    if not (services.config.enable_registration
            and services.config.registration_requires_token):
        raise forbidden("Registration tokens are not in use on this server")
    token = request.query.get("token")
    if token is None:
        raise missing_param("token")
    row = await services.store.get_registration_token(token)
    now = services.clock()
    valid = row is not None and (row.expiry_time is None or row.expiry_time > now) and (
        row.uses_allowed is None or row.completed < row.uses_allowed)
    return json_response({"valid": valid})


def add_routes(app: web.Application) -> None:
    client_route(app, "POST", "/register", register)
    client_route(app, "GET", "/register/available", available)
    client_route(app, "GET", "/register/m.login.registration_token/validity", token_validity,
                 V1)
