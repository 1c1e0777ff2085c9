"""Typing notifications, receipts and read markers: ``PUT /rooms/{roomId}/typing/{userId}``,
``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``,
``POST /rooms/{roomId}/read_markers``."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.receipts import FULLY_READ, RECEIPT_TYPES
from hs.http.errors import bad_json, forbidden, invalid_param
from hs.http.request import get_str, read_json_object
from hs.http.responses import json_response


async def put_typing(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    room_id, user_id = request.match_info["room_id"], request.match_info["user_id"]
    if user_id != requester.user_id:
        raise forbidden("Cannot set typing state for another user")
    body = await read_json_object(request)
    typing = body.get("typing")
    if not isinstance(typing, bool):
        raise bad_json("'typing' must be a boolean")
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                or timeout < 0):
        raise bad_json("'timeout' must be a non-negative integer")
    await services.directory.require_joined(room_id, user_id)
    await services.typing.set_typing(room_id, user_id, typing, timeout)
    return json_response({})


async def post_receipt(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    room_id = request.match_info["room_id"]
    receipt_type = request.match_info["receipt_type"]
    event_id = request.match_info["event_id"]
    if receipt_type not in (*RECEIPT_TYPES, FULLY_READ):
        raise invalid_param(
            f"Receipt type must be one of {', '.join((*RECEIPT_TYPES, FULLY_READ))}")
    body = await read_json_object(request, allow_empty=True)
    thread_id = services.receipts.check_thread_id(body.get("thread_id"))
    if receipt_type == FULLY_READ:
        if thread_id is not None:
            raise invalid_param(f"thread_id is not allowed for {FULLY_READ}")
        # The spec: this endpoint "effectively calls /read_markers" for m.fully_read.
        await services.read_markers.set_read_markers(requester.user_id, room_id,
                                                     fully_read=event_id)
    else:
        await services.receipts.send_receipt(requester.user_id, room_id, receipt_type,
                                             event_id, thread_id)
    return json_response({})


async def post_read_markers(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    fully_read = get_str(body, FULLY_READ, None)
    read = get_str(body, "m.read", None)
    read_private = get_str(body, "m.read.private", None)
    await services.read_markers.set_read_markers(
        requester.user_id, request.match_info["room_id"], fully_read=fully_read, read=read,
        read_private=read_private)
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "PUT", "/rooms/{room_id}/typing/{user_id}", put_typing)
    client_route(app, "POST", "/rooms/{room_id}/receipt/{receipt_type}/{event_id}",
                 post_receipt)
    client_route(app, "POST", "/rooms/{room_id}/read_markers", post_read_markers)
