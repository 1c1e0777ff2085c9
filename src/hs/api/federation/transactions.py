"""``PUT /_matrix/federation/v1/send/{txnId}`` (server-server API "Transactions").

PDUs go through ``FederationEventHandler``; EDUs are handed to ``services.edu_handler``
when one is installed. Limits: 50 PDUs and 100 EDUs per transaction (else 400).
"""

from __future__ import annotations

import logging

from aiohttp import web

from hs.api.federation.common import PREFIX, authed, rooms_of
from hs.app import services_of
from hs.handlers.federation.acl import filter_edus
from hs.handlers.federation.inbound import MAX_EDUS, MAX_PDUS
from hs.http.errors import bad_json
from hs.http.responses import json_response

logger = logging.getLogger(__name__)


async def send_transaction(request: web.Request) -> web.Response:
    origin, body = await authed(request, body=True)
    pdus = body.get("pdus", [])
    edus = body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise bad_json("'pdus' and 'edus' must be arrays")
    if body.get("origin") not in (None, origin):
        raise bad_json("'origin' does not match the signing server")
    if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
        raise bad_json(f"At most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs per transaction")
    services = services_of(request)
    edu_handler = getattr(services, "edu_handler", None)

    async def on_edus() -> None:
        if not edus or edu_handler is None:
            return
        try:
            allowed = await filter_edus(services.events, origin, edus)
            if allowed:
                await edu_handler.on_edus(origin, allowed)
        except Exception:  # EDUs are best effort: never fail the PDUs with them
            logger.exception("EDUs from %s failed", origin)

    result = await rooms_of(request).inbound.on_transaction(
        origin, request.match_info["txn_id"], pdus, on_edus)
    return json_response(result)


def add_routes(app: web.Application) -> None:
    app.router.add_put(PREFIX + "/v1/send/{txn_id}", send_transaction)
