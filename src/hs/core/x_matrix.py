"""The ``X-Matrix`` Authorization scheme of federation requests (server-server API,
"Request Authentication").

A request is authenticated by signing the JSON object ``{method, uri, origin, destination,
content?}`` with the origin's key (``hs.core.signing``) and sending the signature in an
``Authorization: X-Matrix origin=...,destination=...,key=...,sig=...`` header. This module
is pure: it builds and parses that header and checks a signature given the verify key; key
lookup and HTTP live in ``hs.federation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey, VerifyKey

from hs.core.auth.identifiers import is_valid_server_name
from hs.core.canonical_json import CanonicalJSONError
from hs.core.keys import is_signing_algorithm_supported, key_id
from hs.core.signing import SignatureVerifyError, sign_json, signed_bytes, verify_signature
from hs.core.unpadded_base64 import decode_base64

__all__ = [
    "SCHEME",
    "XMatrixAuth",
    "XMatrixError",
    "format_x_matrix",
    "parse_x_matrix",
    "request_object",
    "sign_request",
    "verify_request",
]

SCHEME = "X-Matrix"

# RFC 9110 section 5.6.2 "tchar".
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# "the recipient should allow colons to be included in values without requiring the value to
# be enclosed in quotes" (spec); unpadded base64 signatures may also contain '/', which older
# senders leave unquoted, so accept it too.
_UNQUOTED_VALUE = _TCHAR | frozenset(":/")
_OWS = " \t"


class XMatrixError(ValueError):
    """The Authorization header is not a well-formed X-Matrix header."""


@dataclass(frozen=True, slots=True)
class XMatrixAuth:
    """The parameters of one X-Matrix header (``destination`` is None for pre-v1.3 senders)."""

    origin: str
    destination: str | None
    key: str
    sig: str


def _quote(value: str) -> str:
    # Senders should avoid backslashes (spec), so only escape when we must.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_x_matrix(auth: XMatrixAuth) -> str:
    """The header value, in the most compatible form: one space, lower-case names, quoted
    values, no whitespace around commas (spec "For compatibility with older servers")."""
    params = [f"origin={_quote(auth.origin)}"]
    if auth.destination is not None:
        params.append(f"destination={_quote(auth.destination)}")
    params += [f"key={_quote(auth.key)}", f"sig={_quote(auth.sig)}"]
    return f"{SCHEME} " + ",".join(params)


def _parse_params(text: str) -> dict[str, str]:
    """RFC 9110 section 11.4 auth-params: ``name BWS "=" BWS (token / quoted-string)``,
    comma separated with optional whitespace; names are case-insensitive."""
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and (text[i] in _OWS or text[i] == ","):
            i += 1
        if i >= n:
            return params
        start = i
        while i < n and text[i] in _TCHAR:
            i += 1
        name = text[start:i].lower()
        if not name:
            raise XMatrixError(f"bad character {text[i]!r} in parameter name")
        while i < n and text[i] in _OWS:
            i += 1
        if i >= n or text[i] != "=":
            raise XMatrixError(f"parameter {name!r} has no value")
        i += 1
        while i < n and text[i] in _OWS:
            i += 1
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise XMatrixError(f"unterminated quoted value for {name!r}")
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 1 >= n:
                        raise XMatrixError(f"dangling backslash in {name!r}")
                    c = text[i + 1]
                    i += 1
                chars.append(c)
                i += 1
            value = "".join(chars)
        else:
            start = i
            while i < n and text[i] in _UNQUOTED_VALUE:
                i += 1
            value = text[start:i]
            if not value:
                raise XMatrixError(f"parameter {name!r} has an empty value")
        if name in params:
            raise XMatrixError(f"duplicate parameter {name!r}")
        params[name] = value
        while i < n and text[i] in _OWS:
            i += 1
        if i < n and text[i] != ",":
            raise XMatrixError(f"expected ',' after parameter {name!r}")


def parse_x_matrix(header: str) -> XMatrixAuth:
    """Parse an ``Authorization`` value; unknown parameters are ignored (spec)."""
    scheme, sep, rest = header.partition(" ")
    if not sep or scheme.lower() != SCHEME.lower():
        raise XMatrixError("not an X-Matrix authorization header")
    params = _parse_params(rest.lstrip(" "))
    missing = [p for p in ("origin", "key", "sig") if p not in params]
    if missing:
        raise XMatrixError(f"missing parameter(s): {', '.join(missing)}")
    origin, destination = params["origin"], params.get("destination")
    for what, name in (("origin", origin), ("destination", destination)):
        if name is not None and not is_valid_server_name(name):
            raise XMatrixError(f"{what} {name!r} is not a valid server name")
    return XMatrixAuth(origin, destination, params["key"], params["sig"])


def request_object(
    method: str, uri: str, origin: str, destination: str | None, content: Any = None
) -> dict[str, Any]:
    """The JSON object whose signature authenticates a request (step 1 of the spec).

    ``uri`` is the request target from ``/_matrix/...`` including ``?query`` exactly as sent;
    ``content`` is the parsed body, omitted when there is none.
    """
    obj: dict[str, Any] = {"method": method.upper(), "uri": uri, "origin": origin}
    if destination is not None:
        obj["destination"] = destination
    if content is not None:
        obj["content"] = content
    return obj


def sign_request(
    signing_key: SigningKey,
    origin: str,
    destination: str,
    method: str,
    uri: str,
    content: Any = None,
) -> str:
    """The ``Authorization`` header value for a request we send (destination always set)."""
    obj = sign_json(request_object(method, uri, origin, destination, content), origin, signing_key)
    kid = key_id(signing_key)
    return format_x_matrix(XMatrixAuth(origin, destination, kid, obj["signatures"][origin][kid]))


def verify_request(
    auth: XMatrixAuth, method: str, uri: str, content: Any, verify_key: VerifyKey
) -> None:
    """Raise ``SignatureVerifyError`` unless ``auth.sig`` signs this request with the key.

    The caller has already checked ``auth.destination`` against its own name and looked up
    ``verify_key`` for ``(auth.origin, auth.key)``.
    """
    if not is_signing_algorithm_supported(auth.key) or key_id(verify_key) != auth.key:
        raise SignatureVerifyError(f"key {auth.key!r} does not match the verify key")
    try:
        signature = decode_base64(auth.sig)
    except ValueError:
        raise SignatureVerifyError("request signature is not base64") from None
    try:
        message = signed_bytes(request_object(method, uri, auth.origin, auth.destination, content))
    except CanonicalJSONError as exc:
        raise SignatureVerifyError(f"request has no canonical JSON form: {exc}") from exc
    verify_signature(message, signature, verify_key, f"request from {auth.origin}")
