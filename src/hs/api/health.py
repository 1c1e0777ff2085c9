"""``/health`` (always served, like Synapse) and Prometheus ``/metrics``."""

from __future__ import annotations

from aiohttp import web

from hs.app import services_of
from hs.http.metrics import CONTENT_TYPE


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


async def metrics(request: web.Request) -> web.Response:
    body = services_of(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application, *, with_metrics: bool) -> None:
    app.router.add_get("/health", health)
    if with_metrics:
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/_synapse/metrics", metrics)
