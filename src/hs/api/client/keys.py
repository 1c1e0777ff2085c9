"""End-to-end encryption key endpoints (spec keys.yaml and cross_signing.yaml)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.uia import PASSWORD
from hs.http.errors import bad_json, missing_param
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def upload_keys(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    result = await services.e2e_keys.upload_keys(requester.user_id, requester.device_id, body)
    return json_response(result)


async def query_keys(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    if "device_keys" not in body:
        raise missing_param("device_keys")
    _check_timeout(body)
    return json_response(await services.e2e_keys.query_keys(requester.user_id,
                                                            body["device_keys"]))


async def claim_keys(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    if "one_time_keys" not in body:
        raise missing_param("one_time_keys")
    _check_timeout(body)
    return json_response(await services.e2e_keys.claim_keys(body["one_time_keys"]))


async def key_changes(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    from_token = request.query.get("from")
    to_token = request.query.get("to")
    if from_token is None:
        raise missing_param("from")
    if to_token is None:
        raise missing_param("to")
    changed, left = await services.device_lists.changes_between_tokens(
        requester.user_id, from_token, to_token)
    return json_response({"changed": sorted(changed), "left": sorted(left)})


async def upload_signing_keys(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    handler = services.e2e_keys
    keys = handler.parse_signing_keys(requester.user_id, body)
    result = None
    if await handler.signing_keys_need_uia(requester.user_id, keys):
        result = await services.uia.check(
            request, body, [[PASSWORD]], user_id=requester.user_id,
            description="add a new cross-signing key to your account")
        # The body that finished UIA may omit the keys: use those the session began with.
        if not keys:
            keys = handler.parse_signing_keys(requester.user_id, result.clientdict)
    await handler.upload_signing_keys(requester.user_id, keys)
    if result is not None:
        await services.uia.finish(result)
    return json_response({})


async def upload_signatures(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    return json_response(await services.e2e_keys.upload_signatures(requester.user_id, body))


def _check_timeout(body: dict[str, object]) -> None:
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
        raise bad_json("'timeout' must be an integer")


def add_routes(app: web.Application) -> None:
    client_route(app, "POST", "/keys/upload", upload_keys)
    client_route(app, "POST", "/keys/query", query_keys)
    client_route(app, "POST", "/keys/claim", claim_keys)
    client_route(app, "GET", "/keys/changes", key_changes)
    client_route(app, "POST", "/keys/device_signing/upload", upload_signing_keys)
    client_route(app, "POST", "/keys/signatures/upload", upload_signatures)
