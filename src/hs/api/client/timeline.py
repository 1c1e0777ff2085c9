"""The read side of rooms (thin: parse the query, call ``services.timeline``).

``/messages`` ``/context`` ``/event`` ``/state`` ``/members`` ``/joined_members``
``/joined_rooms`` (v3), ``/relations`` ``/threads`` ``/timestamp_to_event`` (v1).
"""

from __future__ import annotations

from typing import Literal, cast

from aiohttp import web

from hs.api import V1, client_route
from hs.app import services_of
from hs.handlers.filters import parse_inline_room_event_filter
from hs.handlers.timeline.base import INT64, parse_limit
from hs.http.errors import invalid_param, missing_param
from hs.http.responses import json_response


def _dir(request: web.Request, default: str | None = None) -> Literal["b", "f"]:
    value = request.query.get("dir", default)
    if value is None:
        raise missing_param("dir")
    if value not in ("b", "f"):
        raise invalid_param("dir must be 'b' or 'f'")
    return cast(Literal["b", "f"], value)


def _room(request: web.Request) -> str:
    room_id = request.match_info["room_id"]
    if not room_id.startswith("!"):
        raise invalid_param(f"Invalid room ID: {room_id!r}")
    return room_id


async def get_messages(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    q = request.query
    body = await services.timeline.messages(
        requester, _room(request), direction=_dir(request), from_token=q.get("from") or None,
        to_token=q.get("to") or None, limit=parse_limit(q.get("limit"), 10),
        flt=parse_inline_room_event_filter(q.get("filter")))
    return json_response(body)


async def get_context(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    body = await services.timeline.context(
        requester, _room(request), request.match_info["event_id"],
        limit=parse_limit(request.query.get("limit"), 10, 100),
        flt=parse_inline_room_event_filter(request.query.get("filter")))
    return json_response(body)


async def get_event(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    return json_response(await services.timeline.get_event(
        requester, _room(request), request.match_info["event_id"]))


async def get_state(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    return json_response(await services.timeline.room_state(requester, _room(request)))


_MEMBERSHIPS = ("join", "invite", "knock", "leave", "ban")


def _membership_param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in _MEMBERSHIPS:
        raise invalid_param(f"{name} must be one of {', '.join(_MEMBERSHIPS)}")
    return value


async def get_members(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    chunk = await services.timeline.members(
        requester, _room(request), at=request.query.get("at") or None,
        membership=_membership_param(request, "membership"),
        not_membership=_membership_param(request, "not_membership"))
    return json_response({"chunk": chunk})


async def get_joined_members(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    return json_response(await services.timeline.joined_members(requester, _room(request)))


async def get_joined_rooms(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    return json_response({"joined_rooms": await services.timeline.joined_rooms(requester)})


async def get_relations(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    q = request.query
    recurse = q.get("recurse")
    if recurse not in (None, "true", "false"):
        raise invalid_param("recurse must be true or false")
    body = await services.timeline.relations(
        requester, _room(request), request.match_info["event_id"],
        rel_type=request.match_info.get("rel_type"),
        event_type=request.match_info.get("event_type"),
        from_token=q.get("from") or None, to_token=q.get("to") or None,
        limit=max(1, parse_limit(q.get("limit"), 5, 100)), direction=_dir(request, "b"),
        recurse=recurse == "true")
    return json_response(body)


async def get_threads(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    include = request.query.get("include", "all")
    if include not in ("all", "participated"):
        raise invalid_param("include must be 'all' or 'participated'")
    body = await services.timeline.threads(
        requester, _room(request), include=cast(Literal["all", "participated"], include),
        from_token=request.query.get("from") or None,
        limit=parse_limit(request.query.get("limit"), 5, 100))
    return json_response(body)


async def get_timestamp_to_event(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request, allow_guest=True)
    raw_ts = request.query.get("ts")
    if raw_ts is None:
        raise missing_param("ts")
    try:
        ts = int(raw_ts)
    except ValueError:
        raise invalid_param("ts must be an integer") from None
    if not -INT64 <= ts < INT64:
        raise invalid_param("ts is out of range")
    body = await services.timeline.timestamp_to_event(
        requester, _room(request), ts, _dir(request))
    return json_response(body)


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/rooms/{room_id}/messages", get_messages)
    client_route(app, "GET", "/rooms/{room_id}/context/{event_id}", get_context)
    client_route(app, "GET", "/rooms/{room_id}/event/{event_id}", get_event)
    client_route(app, "GET", "/rooms/{room_id}/state", get_state)
    client_route(app, "GET", "/rooms/{room_id}/members", get_members)
    client_route(app, "GET", "/rooms/{room_id}/joined_members", get_joined_members)
    client_route(app, "GET", "/joined_rooms", get_joined_rooms)
    relations = "/rooms/{room_id}/relations/{event_id}"
    client_route(app, "GET", relations, get_relations, V1)
    client_route(app, "GET", relations + "/{rel_type}", get_relations, V1)
    client_route(app, "GET", relations + "/{rel_type}/{event_type}", get_relations, V1)
    client_route(app, "GET", "/rooms/{room_id}/threads", get_threads, V1)
    client_route(app, "GET", "/rooms/{room_id}/timestamp_to_event", get_timestamp_to_event, V1)
