"""The ``keys`` listener resource: ``/_matrix/key/v2/server`` and the notary ``/query``."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    from hs.app import SERVICES

    app[SERVICES].federation.setup_routes(app)
