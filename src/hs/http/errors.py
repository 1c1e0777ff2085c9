"""Matrix standard error responses (``{"errcode", "error"}``) raised from anywhere in a handler."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from hs.http.responses import json_response


class MatrixError(Exception):
    """An error the client sees as a standard error response with the given HTTP status."""

    def __init__(self, status: int, errcode: str, error: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(f"{status} {errcode}: {error}")
        self.status = status
        self.errcode = errcode
        self.error = error
        self.extra = extra
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.error, **self.extra}

    def to_response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


class InteractiveAuthRequired(MatrixError):
    """401 carrying the UIA ``flows``/``params``/``session`` (and an errcode after a bad try)."""

    def __init__(self, flows: dict[str, Any], errcode: str | None = None,
                 error: str | None = None) -> None:
        super().__init__(401, errcode or "", error or "Additional authentication required")
        self.flows = flows

    def body(self) -> dict[str, Any]:
        body = dict(self.flows)
        if self.errcode:
            body["errcode"] = self.errcode
            body["error"] = self.error
        return body


def bad_json(error: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", error)


def not_json(error: str = "Content not JSON.") -> MatrixError:
    return MatrixError(400, "M_NOT_JSON", error)


def missing_param(name: str) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", f"Missing parameter: {name}")


def invalid_param(error: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", error)


def forbidden(error: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", error)


def not_found(error: str = "Not found") -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", error)


def unrecognized(status: int = 404, error: str = "Unrecognized request") -> MatrixError:
    return MatrixError(status, "M_UNRECOGNIZED", error)


def missing_token() -> MatrixError:
    return MatrixError(401, "M_MISSING_TOKEN", "Missing access token")


def unknown_token(error: str = "Unrecognised access token", *, soft_logout: bool = False
                  ) -> MatrixError:
    return MatrixError(401, "M_UNKNOWN_TOKEN", error, soft_logout=soft_logout)


def too_large(limit: int) -> MatrixError:
    return MatrixError(413, "M_TOO_LARGE", f"Request body too large (limit {limit} bytes)")


def limit_exceeded(retry_after_ms: int) -> MatrixError:
    seconds = max(1, math.ceil(retry_after_ms / 1000))
    return MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests",
                       headers={"Retry-After": str(seconds)}, retry_after_ms=retry_after_ms)
