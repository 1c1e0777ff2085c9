"""Push rules (client-server "Push Rules: API", pushrules.yaml): ``GET /pushrules/``,
``GET /pushrules/global/``, ``GET/PUT/DELETE /pushrules/global/{kind}/{ruleId}`` and
``GET/PUT .../{ruleId}/enabled`` and ``.../actions``. Thin: ``hs.handlers.push.rules``
holds the rules and validation."""

from __future__ import annotations

from aiohttp import web

from hs.api import client_route
from hs.app import services_of
from hs.handlers.push.rules import check_kind
from hs.http.errors import unrecognized
from hs.http.request import read_json_object
from hs.http.responses import json_response

ATTRS = ("enabled", "actions")


async def get_all(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    return json_response(await services.push.rules.ruleset(requester.user_id))


async def get_global(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    return json_response((await services.push.rules.ruleset(requester.user_id))["global"])


def _path(request: web.Request) -> tuple[str, str]:
    kind, rule_id = request.match_info["kind"], request.match_info["rule_id"]
    check_kind(request.match_info["scope"], kind)
    return kind, rule_id


async def get_rule(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    kind, rule_id = _path(request)
    return json_response(await services.push.rules.get_rule(requester.user_id, kind, rule_id))


async def put_rule(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    kind, rule_id = _path(request)
    body = await read_json_object(request)
    before, after = request.query.get("before"), request.query.get("after")
    await services.push.rules.set_rule(requester.user_id, kind, rule_id, body,
                                       before=before or None, after=after or None)
    return json_response({})


async def delete_rule(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    kind, rule_id = _path(request)
    await services.push.rules.delete_rule(requester.user_id, kind, rule_id)
    return json_response({})


def _attr(request: web.Request) -> str:
    attr = request.match_info["attr"]
    if attr not in ATTRS:
        raise unrecognized(404, f"Unknown push rule attribute {attr!r}")
    return attr


async def get_attr(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    kind, rule_id = _path(request)
    attr = _attr(request)
    value = await services.push.rules.get_attr(requester.user_id, kind, rule_id, attr)
    return json_response({attr: value})


async def put_attr(request: web.Request) -> web.Response:
    services = services_of(request)
    requester = await services.auth.get_requester(request)
    kind, rule_id = _path(request)
    attr = _attr(request)
    body = await read_json_object(request)
    await services.push.rules.set_attr(requester.user_id, kind, rule_id, attr, body)
    return json_response({})


def add_routes(app: web.Application) -> None:
    client_route(app, "GET", "/pushrules/", get_all)
    client_route(app, "GET", "/pushrules", get_all)
    client_route(app, "GET", "/pushrules/global/", get_global)
    rule = "/pushrules/{scope}/{kind}/{rule_id}"
    client_route(app, "GET", rule, get_rule)
    client_route(app, "PUT", rule, put_rule)
    client_route(app, "DELETE", rule, delete_rule)
    client_route(app, "GET", rule + "/{attr}", get_attr)
    client_route(app, "PUT", rule + "/{attr}", put_attr)
