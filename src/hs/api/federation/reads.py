"""Event, state, auth chain, backfill, missing events and timestamp lookups
(server-server API "Retrieving events", "Backfilling and retrieving missing events")."""

from __future__ import annotations

from aiohttp import web

from hs.api.federation.common import PREFIX, authed, query_int, query_str, rooms_of
from hs.http.errors import invalid_param
from hs.http.responses import json_response


async def get_event(request: web.Request) -> web.Response:
    origin, _ = await authed(request)
    return json_response(await rooms_of(request).queries.get_event(
        origin, request.match_info["event_id"]))


async def get_state(request: web.Request) -> web.Response:
    origin, _ = await authed(request)
    event_id = query_str(request, "event_id")
    assert event_id is not None
    return json_response(await rooms_of(request).queries.state(
        origin, request.match_info["room_id"], event_id))


async def get_state_ids(request: web.Request) -> web.Response:
    origin, _ = await authed(request)
    event_id = query_str(request, "event_id")
    assert event_id is not None
    ids, chain = await rooms_of(request).queries.state_ids(
        origin, request.match_info["room_id"], event_id)
    return json_response({"pdu_ids": ids, "auth_chain_ids": chain})


async def get_event_auth(request: web.Request) -> web.Response:
    origin, _ = await authed(request)
    return json_response(await rooms_of(request).queries.event_auth(
        origin, request.match_info["room_id"], request.match_info["event_id"]))


async def backfill(request: web.Request) -> web.Response:
    origin, _ = await authed(request)
    return json_response(await rooms_of(request).queries.backfill(
        origin, request.match_info["room_id"], request.query.getall("v", []),
        query_int(request, "limit")))


async def get_missing_events(request: web.Request) -> web.Response:
    origin, body = await authed(request, body=True)
    return json_response(await rooms_of(request).queries.get_missing_events(
        origin, request.match_info["room_id"], body))


async def timestamp_to_event(request: web.Request) -> web.Response:
    origin, _ = await authed(request)
    direction = query_str(request, "dir")
    if direction not in ("f", "b"):
        raise invalid_param("'dir' must be 'f' or 'b'")
    return json_response(await rooms_of(request).queries.timestamp_to_event(
        origin, request.match_info["room_id"], query_int(request, "ts"), direction))


def add_routes(app: web.Application) -> None:
    v1 = PREFIX + "/v1"
    app.router.add_get(v1 + "/event/{event_id}", get_event)
    app.router.add_get(v1 + "/state/{room_id}", get_state)
    app.router.add_get(v1 + "/state_ids/{room_id}", get_state_ids)
    app.router.add_get(v1 + "/event_auth/{room_id}/{event_id}", get_event_auth)
    app.router.add_get(v1 + "/backfill/{room_id}", backfill)
    app.router.add_post(v1 + "/get_missing_events/{room_id}", get_missing_events)
    app.router.add_get(v1 + "/timestamp_to_event/{room_id}", timestamp_to_event)
