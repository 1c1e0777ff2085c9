"""``/health`` (always served, like Synapse) and Prometheus ``/metrics``."""

from __future__ import annotations

from aiohttp import web

from hs.app import services_of, services_of_app


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


async def metrics(request: web.Request) -> web.Response:
    from hs.http.metrics import CONTENT_TYPE

    metrics = services_of(request).metrics
    assert metrics is not None  # the route exists only with metrics on
    body = metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application, *, with_metrics: bool) -> None:
    """``with_metrics``: the listener serves the ``metrics`` resource; the routes exist
    only when ``enable_metrics`` is on too (as in Synapse)."""
    app.router.add_get("/health", health)
    if with_metrics and services_of_app(app).metrics is not None:
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/_synapse/metrics", metrics)
