"""HTTP endpoints. Each module exposes ``add_routes(app)``; handlers stay thin and delegate
to ``hs.handlers``. ``add_routes`` here mounts the modules for a listener's resources."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Most client endpoints are served under v3 and the legacy r0 prefix clients still use.
V3 = ("/_matrix/client/v3", "/_matrix/client/r0")
V1 = ("/_matrix/client/v1",)

_CLIENT_MODULES = ("versions", "capabilities", "wellknown", "register", "login", "logout",
                   "account", "devices", "profile", "directory", "ephemeral",
                   "timeline", "filters", "keys", "to_device", "rooms", "membership",
                   "sync", "account_data", "presence", "push_rules", "notifications",
                   "pushers", "openid", "hierarchy")
#: Resources other parts of hs provide; mounted when their module exists.
_OPTIONAL_RESOURCES = {"federation": "hs.api.federation", "keys": "hs.api.keys",
                       "media": "hs.api.media"}


def client_route(app: web.Application, method: str, path: str, handler: Handler,
                 prefixes: tuple[str, ...] = V3) -> None:
    for prefix in prefixes:
        app.router.add_route(method, prefix + path, handler)


def add_routes(app: web.Application, resources: frozenset[str]) -> None:
    from hs.api import health

    health.add_routes(app, with_metrics="metrics" in resources)
    if "client" in resources:
        for name in _CLIENT_MODULES:
            importlib.import_module(f"hs.api.client.{name}").add_routes(app)
        from hs.api.admin import add_routes as add_admin_routes

        add_admin_routes(app)
    for resource, module_name in _OPTIONAL_RESOURCES.items():
        if resource not in resources:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            logger.debug("Resource %s requested but %s is not available", resource, module_name)
            continue
        module.add_routes(app)
