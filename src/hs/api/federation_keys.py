"""Federation endpoints for end-to-end encryption, answered for our own users (server-server
"Device Management" and "End-to-End Encryption"):

- ``GET  /_matrix/federation/v1/user/devices/{userId}``
- ``POST /_matrix/federation/v1/user/keys/query``
- ``POST /_matrix/federation/v1/user/keys/claim``

Every request is authenticated (X-Matrix). Users of other servers are not ours to answer
for: ``/user/devices`` refuses them, the key endpoints leave them out of the answer. A
user's user-signing key is never shared over federation (only its owner may see it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hs.federation.auth import FEDERATION_AUTH, authenticate_request
from hs.http.errors import MatrixError, bad_json
from hs.http.request import read_json_object
from hs.http.responses import json_response

PREFIX = "/_matrix/federation/v1"


def _services(request: web.Request) -> Any:
    from hs.app import services_of

    return services_of(request)


def _local(request: web.Request, user_id: Any) -> bool:
    server = _services(request).config.server_name
    return isinstance(user_id, str) and user_id.startswith("@") and \
        user_id.split(":", 1)[-1] == server and ":" in user_id


async def user_devices(request: web.Request) -> web.Response:
    await authenticate_request(request, None)
    services = _services(request)
    user_id = request.match_info["user_id"]
    if not _local(request, user_id):
        raise MatrixError(403, "M_FORBIDDEN", "Not a user of this server")
    rows = await services.e2e_keys.store.get_device_keys([user_id])
    devices = []
    for row in sorted(rows, key=lambda r: r.device_id):
        device: dict[str, Any] = {"device_id": row.device_id, "keys": row.keys}
        if row.display_name is not None:
            device["device_display_name"] = row.display_name
        devices.append(device)
    body: dict[str, Any] = {
        "user_id": user_id, "devices": devices,
        # The ID of the last m.device_list_update sent for the user: the update EDUs
        # that follow name it in prev_id.
        "stream_id": await services.sender.store.get_device_list_id(user_id) or 0}
    cross = (await services.e2e_keys.store.get_cross_signing_keys([user_id])).get(user_id, {})
    for keytype, field in (("master", "master_key"), ("self_signing", "self_signing_key")):
        if keytype in cross:
            body[field] = cross[keytype]
    return json_response(body)


async def keys_query(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await authenticate_request(request, body)
    wanted = body.get("device_keys")
    if not isinstance(wanted, dict):
        raise bad_json("'device_keys' must be an object")
    local = {u: d for u, d in wanted.items() if _local(request, u)}
    # No local user is the requester: only the owners' own signatures are included.
    result = await _services(request).e2e_keys.query_keys("", local)
    return json_response({f: result[f] for f in ("device_keys", "master_keys",
                                                 "self_signing_keys")})


async def keys_claim(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await authenticate_request(request, body)
    wanted = body.get("one_time_keys")
    if not isinstance(wanted, dict):
        raise bad_json("'one_time_keys' must be an object")
    local = {u: d for u, d in wanted.items() if _local(request, u)}
    result = await _services(request).e2e_keys.claim_keys(local)
    return json_response({"one_time_keys": result["one_time_keys"]})


def add_routes(app: web.Application) -> None:
    """Mount the three endpoints (and the request authenticator, if not yet there)."""
    from hs.app import SERVICES

    if FEDERATION_AUTH not in app:
        app[FEDERATION_AUTH] = app[SERVICES].federation.authenticator
    app.router.add_get(PREFIX + "/user/devices/{user_id}", user_devices)
    app.router.add_post(PREFIX + "/user/keys/query", keys_query)
    app.router.add_post(PREFIX + "/user/keys/claim", keys_claim)


__all__ = ["add_routes"]
