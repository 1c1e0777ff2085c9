"""Registration-token admin API (Synapse's ``/_synapse/admin/v1/registration_tokens``)."""

from __future__ import annotations

import secrets
import string

from aiohttp import web

from hs.app import services_of
from hs.http.errors import MatrixError, invalid_param, not_found
from hs.http.request import read_json_object
from hs.http.responses import json_response
from hs.storage.accounts.store import RegistrationToken

_TOKEN_CHARS = string.ascii_letters + string.digits + "._~-"
PREFIX = "/_synapse/admin/v1/registration_tokens"


def _optional_int(body: dict[str, object], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_param(f"{key} must be a non-negative integer")
    return value


async def list_tokens(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.require_admin(request)
    tokens = await services.store.list_registration_tokens()
    return json_response({"registration_tokens": [t.to_json() for t in tokens]})


async def new_token(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.require_admin(request)
    body = await read_json_object(request, allow_empty=True)
    token = body.get("token")
    if token is None:
        length = _optional_int(body, "length") or 16
        if not 0 < length <= 64:
            raise invalid_param("length must be between 1 and 64")
        token = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(length))
    elif not isinstance(token, str) or not 0 < len(token) <= 64 or any(
            c not in _TOKEN_CHARS for c in token):
        raise invalid_param("token must be 1-64 characters of A-Z, a-z, 0-9, ._~-")
    row = RegistrationToken(token, _optional_int(body, "uses_allowed"), 0, 0,
                            _optional_int(body, "expiry_time"))
    if not await services.store.create_registration_token(row):
        raise MatrixError(400, "M_INVALID_PARAM", f"Token already exists: {token}")
    return json_response(row.to_json())


async def get_token(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.require_admin(request)
    row = await services.store.get_registration_token(request.match_info["token"])
    if row is None:
        raise not_found("No such registration token")
    return json_response(row.to_json())


async def delete_token(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.require_admin(request)
    if not await services.store.delete_registration_token(request.match_info["token"]):
        raise not_found("No such registration token")
    return json_response({})


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX, list_tokens)
    app.router.add_post(PREFIX + "/new", new_token)
    app.router.add_get(PREFIX + "/{token}", get_token)
    app.router.add_delete(PREFIX + "/{token}", delete_token)
