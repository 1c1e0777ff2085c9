"""make_/send_ join, leave and knock, and invites (server-server API "Joining Rooms",
"Knocking upon a room", "Leaving Rooms (Rejecting Invites)", "Inviting to a room").
The deprecated v1 send_join/send_leave answer ``[200, body]`` as the spec describes."""

from __future__ import annotations

from aiohttp import web

from hs.api import Handler
from hs.api.federation.common import PREFIX, authed, rooms_of
from hs.http.responses import json_response


def _versions(request: web.Request, membership: str) -> list[str] | None:
    if membership == "leave":
        return None
    # make_join: "If not provided, the room version is assumed to be either '1' or '2'".
    return request.query.getall("ver", ["1", "2"] if membership == "join" else [])


def make(membership: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        origin, _ = await authed(request)
        return json_response(await rooms_of(request).resident.make_membership(
            origin, request.match_info["room_id"], request.match_info["user_id"],
            membership, _versions(request, membership)))
    return handler


def send(membership: str, *, v1: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        origin, body = await authed(request, body=True)
        fed = rooms_of(request)
        pdu = await fed.resident.send_membership(
            origin, request.match_info["room_id"], request.match_info["event_id"], body,
            membership)
        if membership == "join":
            result = await fed.resident.join_response(pdu, omit_members=False)
        elif membership == "knock":
            result = await fed.resident.knock_response(pdu)
        else:
            result = {}
        return json_response([200, result] if v1 else result)
    return handler


async def invite_v2(request: web.Request) -> web.Response:
    origin, body = await authed(request, body=True)
    return json_response(await rooms_of(request).resident.on_invite(
        origin, request.match_info["room_id"], request.match_info["event_id"], body))


def add_routes(app: web.Application) -> None:
    for membership in ("join", "leave", "knock"):
        app.router.add_get(f"{PREFIX}/v1/make_{membership}/{{room_id}}/{{user_id}}",
                           make(membership))
    app.router.add_put(PREFIX + "/v2/send_join/{room_id}/{event_id}", send("join"))
    app.router.add_put(PREFIX + "/v1/send_join/{room_id}/{event_id}", send("join", v1=True))
    app.router.add_put(PREFIX + "/v2/send_leave/{room_id}/{event_id}", send("leave"))
    app.router.add_put(PREFIX + "/v1/send_leave/{room_id}/{event_id}", send("leave", v1=True))
    app.router.add_put(PREFIX + "/v1/send_knock/{room_id}/{event_id}", send("knock"))
    app.router.add_put(PREFIX + "/v2/invite/{room_id}/{event_id}", invite_v2)
