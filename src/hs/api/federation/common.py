"""Request plumbing shared by the federation endpoints: X-Matrix authentication of the
(strictly decoded) body, and query-parameter helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from hs.core.json_decode import JSONDecodeError, decode_strict
from hs.federation.auth import authenticate_request
from hs.http.errors import MatrixError, bad_json, invalid_param, missing_param, not_json
from hs.http.request import read_body

if TYPE_CHECKING:
    from hs.handlers.federation import FederationRooms

PREFIX = "/_matrix/federation"


def rooms_of(request: web.Request) -> FederationRooms:
    from hs.app import services_of

    return services_of(request).federation_rooms


async def authed(request: web.Request, *, body: bool = False) -> tuple[str, Any]:
    """``(origin, parsed body or None)`` of a correctly signed request (401 otherwise).

    Bodies are decoded strictly (no duplicate keys, no NaN); floats and big integers are
    kept because PDUs of room versions 1-5 may carry them - each PDU is then checked
    against its own room version's rules."""
    parsed: Any = None
    raw = await read_body(request) if request.can_read_body else b""
    if raw.strip():
        try:
            parsed = decode_strict(raw, allow_floats=True, allow_big_ints=True)
        except JSONDecodeError as exc:
            raise MatrixError(400, exc.errcode, str(exc)) from None
    origin = await authenticate_request(request, parsed)
    if body and parsed is None:
        raise not_json("A JSON body is required")
    if body and not isinstance(parsed, dict):
        raise bad_json("The body must be a JSON object")
    return origin, parsed


def query_str(request: web.Request, name: str, *, required: bool = True) -> str | None:
    value = request.query.get(name)
    if value is None and required:
        raise missing_param(name)
    return value


def query_int(request: web.Request, name: str, default: int | None = None) -> int:
    value = request.query.get(name)
    if value is None:
        if default is None:
            raise missing_param(name)
        return default
    try:
        return int(value)
    except ValueError:
        raise invalid_param(f"'{name}' must be an integer") from None
