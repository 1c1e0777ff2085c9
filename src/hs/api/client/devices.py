"""Device management: list, get, rename, delete (UIA), bulk delete (UIA)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.uia import PASSWORD
from hs.http.request import get_str, get_str_list, read_json_object
from hs.http.responses import json_response


async def list_devices(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    return json_response({"devices": await services.devices.list_for(requester.user_id)})


async def get_device(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    return json_response(await services.devices.get(requester.user_id,
                                                    request.match_info["device_id"]))


async def update_device(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    device_id = request.match_info["device_id"]
    name = get_str(body, "display_name", None)
    if name is None:
        await services.devices.get(requester.user_id, device_id)  # still 404 when unknown
    else:
        await services.devices.rename(requester.user_id, device_id, name)
    return json_response({})


async def delete_device(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request, allow_empty=True)
    result = await services.uia.check(request, body, [[PASSWORD]], user_id=requester.user_id,
                                      description="remove a device from your account")
    await services.devices.delete(requester.user_id, [request.match_info["device_id"]])
    await services.uia.finish(result)
    return json_response({})


async def delete_devices(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    device_ids = get_str_list(body, "devices")
    result = await services.uia.check(request, body, [[PASSWORD]], user_id=requester.user_id,
                                      description="remove devices from your account")
    await services.devices.delete(requester.user_id, device_ids)
    await services.uia.finish(result)
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/devices", list_devices)
    client_route(app, "GET", "/devices/{device_id}", get_device)
    client_route(app, "PUT", "/devices/{device_id}", update_device)
    client_route(app, "DELETE", "/devices/{device_id}", delete_device)
    client_route(app, "POST", "/delete_devices", delete_devices)
