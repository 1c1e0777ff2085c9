"""The ``federation`` listener resource: every ``/_matrix/federation`` route.

``add_routes`` also registers the X-Matrix authenticator on the app (``FEDERATION_AUTH``)
so that the resource works without the ``keys`` resource on the same listener, and mounts
the federation endpoints other parts of hs keep in their own modules (``_SIBLINGS``:
device lists and E2E keys, helper F2) when they exist.
"""

from __future__ import annotations

import importlib

from aiohttp import web

from hs.federation.auth import FEDERATION_AUTH

_SIBLINGS = ("hs.api.federation_keys",)


def add_routes(app: web.Application) -> None:
    from hs.api.federation import hierarchy, membership, queries, reads, transactions
    from hs.app import SERVICES

    if FEDERATION_AUTH not in app:
        app[FEDERATION_AUTH] = app[SERVICES].federation.authenticator
    for module in (transactions, reads, membership, queries, hierarchy):
        module.add_routes(app)
    importlib.import_module("hs.api.federation.openid").add_routes(app)
    for name in _SIBLINGS:
        try:
            sibling = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        sibling.add_routes(app)
