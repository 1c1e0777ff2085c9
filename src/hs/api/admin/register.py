"""Shared-secret registration (``/_synapse/admin/v1/register``), as used by
``register_new_matrix_user`` and ``hs register-user``.

GET returns a single-use nonce; POST carries an HMAC-SHA1 over
``nonce NUL username NUL password NUL admin|notadmin [NUL user_type]`` keyed with
``registration_shared_secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from hs.app import Services, services_of
from hs.http.errors import MatrixError, bad_json, forbidden
from hs.http.request import get_bool, get_str, read_json_object
from hs.http.responses import json_response

NONCE_LIFETIME_MS = 60_000


def registration_mac(secret: str, nonce: str, username: str, password: str, admin: bool,
                     user_type: str | None = None) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    parts = [nonce, username, password, "admin" if admin else "notadmin"]
    if user_type:
        parts.append(user_type)
    mac.update(b"\x00".join(p.encode("utf-8") for p in parts))
    return mac.hexdigest()


def _secret(services: Services) -> str:
    secret = services.config.registration_shared_secret
    if not secret:
        raise MatrixError(400, "M_UNKNOWN", "Shared secret registration is not enabled")
    return secret


def _prune(services: Services, now: int) -> None:
    for nonce, created in list(services.admin_nonces.items()):
        if now - created > NONCE_LIFETIME_MS:
            del services.admin_nonces[nonce]


async def get_nonce(request: web.Request) -> web.Response:
    services = services_of(request)
    _secret(services)
    now = services.clock()
    _prune(services, now)
    nonce = secrets.token_hex(32)
    services.admin_nonces[nonce] = now
    return json_response({"nonce": nonce})


async def register(request: web.Request) -> web.Response:
    services = services_of(request)
    secret = _secret(services)
    body = await read_json_object(request)
    nonce = get_str(body, "nonce")
    username = get_str(body, "username")
    password = get_str(body, "password")
    given_mac = get_str(body, "mac")
    admin = get_bool(body, "admin", False)
    user_type = get_str(body, "user_type", None)
    displayname = get_str(body, "displayname", None)
    _prune(services, services.clock())
    if services.admin_nonces.pop(nonce, None) is None:
        raise MatrixError(400, "M_UNKNOWN", "Unrecognised nonce")
    if "\x00" in username or "\x00" in password:
        raise bad_json("Invalid username or password")
    expected = registration_mac(secret, nonce, username, password, admin, user_type)
    if not hmac.compare_digest(expected.encode(), given_mac.encode()):
        raise forbidden("HMAC incorrect")
    localpart = services.registration.canonical_localpart(username)
    services.passwords.check_policy(password)
    await services.registration.check_available(localpart)
    user_id = await services.registration.register(localpart, password, admin=admin,
                                                   user_type=user_type, displayname=displayname)
    response = await services.registration.login_new_user(user_id, None, None, refreshable=False)
    return json_response(response)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_synapse/admin/v1/register", get_nonce)
    app.router.add_post("/_synapse/admin/v1/register", register)
