"""Synapse's user admin API subset: query/create/modify a user, reset password, deactivate."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hs.app import Services, services_of
from hs.handlers.identifiers import localpart_of
from hs.http.errors import MatrixError, bad_json, invalid_param, not_found
from hs.http.request import get_bool, get_str, read_json_object
from hs.http.responses import json_response


async def _user_json(services: Services, user_id: str) -> dict[str, Any]:
    user = await services.store.get_user(user_id)
    if user is None:
        raise not_found("User not found")
    profile = await services.store.get_profile(user_id)
    return {"name": user.user_id, "is_guest": user.is_guest, "admin": user.admin,
            "deactivated": user.deactivated, "creation_ts": user.creation_ts,
            "user_type": user.user_type, "displayname": profile.get("displayname"),
            "avatar_url": profile.get("avatar_url")}


def _local_user(services: Services, request: web.Request) -> tuple[str, str]:
    user_id = request.match_info["user_id"]
    localpart = localpart_of(user_id, services.config.server_name)
    if localpart is None or not user_id.startswith("@"):
        raise invalid_param("Can only manage local users")
    return user_id, localpart


async def get_user(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.require_admin(request)
    user_id, _ = _local_user(services, request)
    return json_response(await _user_json(services, user_id))


async def put_user(request: web.Request) -> web.Response:
    """Create the user if missing (201) or apply the given changes (200)."""
    services = services_of(request)
    requester = await services.auth.require_admin(request)
    user_id, localpart = _local_user(services, request)
    body = await read_json_object(request)
    password = get_str(body, "password", None)
    displayname = get_str(body, "displayname", None)
    avatar_url = get_str(body, "avatar_url", None)
    admin = body.get("admin")
    deactivated = body.get("deactivated")
    if admin is not None and not isinstance(admin, bool):
        raise bad_json("'admin' must be a boolean")
    if deactivated is not None and not isinstance(deactivated, bool):
        raise bad_json("'deactivated' must be a boolean")
    user = await services.store.get_user(user_id)
    status = 200
    if user is None:
        services.registration.canonical_localpart(localpart)
        if password is not None:
            services.passwords.check_policy(password)
        await services.registration.register(localpart, password, admin=bool(admin),
                                             displayname=displayname)
        status = 201
    else:
        if deactivated is False and user.deactivated:
            raise MatrixError(400, "M_UNKNOWN", "Reactivating users is not supported")
        if password is not None and not user.deactivated:
            await services.accounts.set_password(
                user_id, password, logout_devices=get_bool(body, "logout_devices", True))
        if displayname is not None:
            await services.profiles.set_field(user_id, user_id, "displayname", displayname)
        if admin is not None:
            if user_id == requester.user_id and not admin:
                raise MatrixError(400, "M_UNKNOWN", "You may not demote yourself")
            await services.store.set_admin(user_id, admin)
        if deactivated and not user.deactivated:
            await services.accounts.deactivate(user_id)
    if avatar_url is not None and not deactivated:
        await services.profiles.set_field(user_id, user_id, "avatar_url", avatar_url)
    return json_response(await _user_json(services, user_id), status=status)


async def reset_password(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.require_admin(request)
    user_id, _ = _local_user(services, request)
    body = await read_json_object(request)
    new_password = get_str(body, "new_password")
    user = await services.store.get_user(user_id)
    if user is None or user.deactivated:
        raise not_found("User not found")
    await services.accounts.set_password(user_id, new_password,
                                         logout_devices=get_bool(body, "logout_devices", True))
    return json_response({})


async def deactivate(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.require_admin(request)
    user_id, _ = _local_user(services, request)
    body = await read_json_object(request, allow_empty=True)
    get_bool(body, "erase", False)
    if await services.store.get_user(user_id) is None:
        raise not_found("User not found")
    await services.accounts.deactivate(user_id)
    return json_response({"id_server_unbind_result": "success"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_synapse/admin/v2/users/{user_id}", get_user)
    app.router.add_put("/_synapse/admin/v2/users/{user_id}", put_user)
    app.router.add_post("/_synapse/admin/v1/reset_password/{user_id}", reset_password)
    app.router.add_post("/_synapse/admin/v1/deactivate/{user_id}", deactivate)
