"""``PUT /sendToDevice/{eventType}/{txnId}`` (spec to_device.yaml)."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.http.errors import missing_param
from hs.http.request import read_json_object
from hs.http.responses import json_response


async def send_to_device(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    if "messages" not in body:
        raise missing_param("messages")
    await services.to_device.send(requester.user_id, requester.device_id,
                                  request.match_info["event_type"],
                                  request.match_info["txn_id"], body["messages"])
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "PUT", "/sendToDevice/{event_type}/{txn_id}", send_to_device)
