"""Reading and type-checking JSON request bodies, mapping failures to the spec's errors.

Unparseable bodies are ``M_NOT_JSON``; valid JSON of the wrong shape is ``M_BAD_JSON``.
Decoding goes through ``hs.core.json_decode`` (no duplicate keys, bounded nesting, integers
in the canonical range), so a hostile body cannot crash the parser.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hs.core.json_decode import JSONDecodeError, decode_json
from hs.http.errors import bad_json, missing_param, not_json, too_large

_MISSING: Any = object()


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        from hs.http.middleware import BODY_LIMIT

        raise too_large(request.app[BODY_LIMIT]) from None


async def read_json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}`` when ``allow_empty``."""
    raw = await read_body(request)
    if not raw.strip():
        if allow_empty:
            return {}
        raise not_json("Request body is empty; expected a JSON object")
    try:
        value = decode_json(raw)
    except JSONDecodeError as exc:
        if exc.errcode == "M_BAD_JSON":
            raise bad_json(str(exc)) from None
        raise not_json(f"Content not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise not_json("Request body must be a JSON object")
    return value


def get_str(body: dict[str, Any], key: str, default: Any = _MISSING) -> Any:
    """``body[key]`` as str; missing: ``default`` or M_MISSING_PARAM; wrong type: M_BAD_JSON."""
    value = body.get(key)
    if value is None:
        if default is _MISSING:
            raise missing_param(key)
        return default
    if not isinstance(value, str):
        raise bad_json(f"'{key}' must be a string")
    return value


def get_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_json(f"'{key}' must be a boolean")
    return value


def get_dict(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_json(f"'{key}' must be an object")
    return value


def get_str_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        raise missing_param(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"'{key}' must be a list of strings")
    return value
