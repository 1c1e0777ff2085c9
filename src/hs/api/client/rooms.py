"""Room creation and sending: ``/createRoom``, ``/send``, ``/state/{type}[/{key}]`` (PUT and
the single-event GET), ``/redact`` and ``/upgrade``. Logic in ``hs.handlers.rooms``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.core.events import redact
from hs.core.pdu import PDU
from hs.http.errors import bad_json, missing_param
from hs.http.request import get_str, read_json_object
from hs.http.responses import json_response


async def create_room(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request, allow_empty=True)
    room_id, alias = await services.rooms.create_room(requester, body)
    response: dict[str, Any] = {"room_id": room_id}
    if alias is not None:
        response["room_alias"] = alias
    return json_response(response)


async def send_message(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    info = request.match_info
    event_id = await services.rooms.send_event(
        requester, info["room_id"], info["event_type"], body, txn_id=info["txn_id"])
    return json_response({"event_id": event_id})


async def put_state(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request)
    info = request.match_info
    room_id, event_type, state_key = info["room_id"], info["event_type"], info.get("state_key", "")
    if event_type == "m.room.member":
        # Element sets per-room display names this way: a membership change of its own.
        membership = body.get("membership")
        if not isinstance(membership, str):
            raise bad_json("m.room.member content needs a 'membership'")
        reason = body.get("reason")
        event_id = await services.rooms.update_membership(
            requester, room_id, state_key, membership,
            reason if isinstance(reason, str) else None, extra_content=body)
    else:
        event_id = await services.rooms.send_event(requester, room_id, event_type, body,
                                                   state_key=state_key)
    return json_response({"event_id": event_id})


async def get_state_event(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    info = request.match_info
    pdu = await services.rooms.get_state_event(
        requester, info["room_id"], info["event_type"], info.get("state_key", ""))
    fmt = request.query.get("format", "content")
    meta = (await services.events.get_event_meta([pdu.event_id])).get(pdu.event_id)
    redacted = meta is not None and meta.redacted_by is not None
    data = redact(pdu.data, pdu.room_version) if redacted else pdu.data
    if fmt == "event":
        return json_response(_client_event(pdu, data, info["room_id"]))
    return json_response(data.get("content", {}))


def _client_event(pdu: PDU, data: dict[str, Any], room_id: str) -> dict[str, Any]:
    """The ClientEvent fields of a state event (spec "Room Events")."""
    event: dict[str, Any] = {k: data[k] for k in ("type", "content", "sender", "origin_server_ts",
                                  "state_key", "room_id") if k in data}
    event["event_id"] = pdu.event_id
    event["room_id"] = room_id  # v12 create events carry no room_id of their own
    event["unsigned"] = {}
    return event


async def redact_event(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await read_json_object(request, allow_empty=True)
    reason = get_str(body, "reason", None)
    info = request.match_info
    event_id = await services.rooms.redact(
        requester, info["room_id"], info["event_id"], reason, info["txn_id"],
        {k: v for k, v in body.items() if k != "reason"})
    return json_response({"event_id": event_id})


async def upgrade_room(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    body = await read_json_object(request)
    new_version = body.get("new_version")
    if new_version is None:
        raise missing_param("new_version")
    if not isinstance(new_version, str):
        raise bad_json("'new_version' must be a string")
    extra = body.get("additional_creators")
    if extra is not None and (not isinstance(extra, list)
                              or not all(isinstance(u, str) for u in extra)):
        raise bad_json("'additional_creators' must be a list of user IDs")
    new_room = await services.rooms.upgrade(requester, request.match_info["room_id"],
                                            new_version, extra)
    return json_response({"replacement_room": new_room})


def add_routes(app: web.Application) -> None:
    client_route(app, "POST", "/createRoom", create_room)
    client_route(app, "PUT", "/rooms/{room_id}/send/{event_type}/{txn_id}", send_message)
    client_route(app, "PUT", "/rooms/{room_id}/state/{event_type}", put_state)
    client_route(app, "PUT", "/rooms/{room_id}/state/{event_type}/{state_key:.*}", put_state)
    client_route(app, "GET", "/rooms/{room_id}/state/{event_type}", get_state_event)
    client_route(app, "GET", "/rooms/{room_id}/state/{event_type}/{state_key:.*}",
                 get_state_event)
    client_route(app, "PUT", "/rooms/{room_id}/redact/{event_id}/{txn_id}", redact_event)
    client_route(app, "POST", "/rooms/{room_id}/upgrade", upgrade_room)
