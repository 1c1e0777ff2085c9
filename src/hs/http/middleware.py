"""aiohttp middlewares: request IDs, Matrix-form errors, CORS, access log and metrics."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError

from hs.http.errors import MatrixError, too_large, unrecognized
from hs.http.logcontext import request_id_var
from hs.http.responses import json_response

if TYPE_CHECKING:  # prometheus_client is imported only when metrics are on
    from hs.http.metrics import HttpMetrics

logger = logging.getLogger("hs.http")
access_logger = logging.getLogger("hs.access")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
}
#: Present when ``enable_metrics`` is on.
METRICS: web.AppKey[HttpMetrics] = web.AppKey("metrics")
BODY_LIMIT = web.AppKey("max_request_body_size", int)
#: Listener ``x_forwarded: true``: trust X-Forwarded-For from the reverse proxy.
X_FORWARDED = web.AppKey("x_forwarded", bool)
REQUEST_ID = web.RequestKey("request_id", str)
#: Set by authentication so the access log can name the user.
USER_ID = web.RequestKey("user_id", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_counter = itertools.count(1)


def _endpoint(request: web.Request) -> str:
    """The route pattern (bounded label set for metrics), not the concrete path."""
    info = request.match_info
    if isinstance(info, MatchInfoError) or info.route.resource is None:
        return "<unmatched>"
    return info.route.resource.canonical


def _http_error(exc: web.HTTPException) -> MatrixError:
    if isinstance(exc, web.HTTPNotFound):
        return unrecognized(404, "Unrecognized request")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return unrecognized(405, f"Method {exc.method} not allowed here")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return too_large(exc.max_size if hasattr(exc, "max_size") else 0)
    errcode = "M_FORBIDDEN" if exc.status == 403 else "M_UNKNOWN"
    return MatrixError(exc.status, errcode, exc.reason or "Error")


async def _respond(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the handler, mapping every failure to a Matrix error response."""
    try:
        if request.method == "OPTIONS":
            # The spec forbids running endpoint logic for OPTIONS: answer CORS and stop.
            return web.Response(status=204)
        limit = request.app[BODY_LIMIT]
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
        return await handler(request)
    except MatrixError as exc:
        return exc.to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc).to_response()
    except Exception:
        logger.exception("Unhandled error in %s %s (request %s)", request.method,
                         request.path, request[REQUEST_ID])
        return json_response({"errcode": "M_UNKNOWN", "error": "Internal server error"},
                             status=500)


@web.middleware
async def matrix_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost wrapper: assigns the request ID, turns every failure into a Matrix error,
    answers CORS pre-flight, and records the access log line and metrics."""
    if request.app.get(X_FORWARDED):
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded:
            request = request.clone(remote=forwarded.split(",")[0].strip())
    rid = f"{request.method}-{next(_counter)}"
    token = request_id_var.set(rid)
    request[REQUEST_ID] = rid
    started = time.perf_counter()
    try:
        response = await _respond(request, handler)
        response.headers.update(CORS_HEADERS)
        elapsed = time.perf_counter() - started
        endpoint = _endpoint(request)
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.observe(request.method, endpoint, response.status, elapsed)
        access_logger.info(
            "request=%s remote=%s method=%s path=%s endpoint=%s status=%d duration_ms=%.1f"
            " user=%s", rid, request.remote, request.method, request.path, endpoint,
            response.status, elapsed * 1000, request.get(USER_ID, "-"))
        return response
    finally:
        request_id_var.reset(token)
