"""``GET /notifications`` (notifications.yaml): events the user was notified about, newest
first, with their actions and whether a read receipt covers them."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.push.counts import DEFAULT_LIMIT, MAX_LIMIT
from hs.http.errors import invalid_param
from hs.http.responses import json_response


async def get_notifications(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    from_token = request.query.get("from") or None
    if from_token is not None and not (from_token.isascii() and from_token.isdigit()
                                       and len(from_token) <= 18):
        raise invalid_param("Invalid 'from' token")
    raw_limit = request.query.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not (raw_limit.isascii() and raw_limit.isdigit()) or int(raw_limit) < 1:
            raise invalid_param("'limit' must be a positive integer")
        limit = min(int(raw_limit), MAX_LIMIT)
    only = request.query.get("only") or None
    # Push actions are written just after a send wakes the client: include every event
    # persisted so far, as /sync's unread counts do.
    await services.rooms.pipeline.hooks_settled(services.events.max_stream_ordering())
    body = await services.push.counts.notifications(requester.user_id, from_token, limit,
                                                    only)
    return json_response(body)


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/notifications", get_notifications)
