"""Authenticating inbound federation requests (server-server API, "Request Authentication").

``FederationAuthenticator.authenticate_request(request, body_json)`` returns the origin
server name when an ``Authorization: X-Matrix`` header verifies, else raises ``MatrixError``
401 ``M_UNAUTHORIZED``. The signed ``uri`` is the request target exactly as received
(``request.raw_path``: path and query, still percent-encoded), and the key must be a
*current* key of the origin (valid now): ``old_verify_keys`` "are only valid for signing
events".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from aiohttp import hdrs, web

from hs.core.signing import SignatureVerifyError
from hs.core.x_matrix import XMatrixAuth, XMatrixError, parse_x_matrix, verify_request
from hs.federation.keyring import KeyLookupError, Keyring
from hs.http.errors import MatrixError

logger = logging.getLogger(__name__)

#: ``request[ORIGIN_KEY]`` is the origin once authenticated (handlers may read it).
ORIGIN_KEY: Any = (
    web.RequestKey("federation_origin", str) if hasattr(web, "RequestKey") else "federation_origin"
)


def _unauthorized(error: str) -> MatrixError:
    return MatrixError(401, "M_UNAUTHORIZED", error)


class FederationAuthenticator:
    """Checks X-Matrix signatures with keys from the keyring."""

    def __init__(
        self,
        server_name: str,
        keyring: Keyring,
        *,
        domain_whitelist: Collection[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server_name = server_name
        self.keyring = keyring
        #: ``federation_domain_whitelist``: when set, other origins get 403.
        self.domain_whitelist = None if domain_whitelist is None else frozenset(domain_whitelist)
        self._clock = clock

    def _parse(self, request: web.BaseRequest) -> list[XMatrixAuth]:
        headers = request.headers.getall(hdrs.AUTHORIZATION, [])
        parsed: list[XMatrixAuth] = []
        for header in headers:
            if not header.lower().startswith("x-matrix"):
                continue
            try:
                parsed.append(parse_x_matrix(header))
            except XMatrixError as exc:
                raise _unauthorized(f"Malformed Authorization header: {exc}") from None
        if not parsed:
            raise _unauthorized("Missing X-Matrix Authorization header")
        if len({a.origin for a in parsed}) > 1:
            raise _unauthorized("Authorization headers name different origins")
        return parsed

    async def authenticate_request(self, request: web.BaseRequest, body_json: Any) -> str:
        """The origin server name of a correctly signed request; ``body_json`` is the parsed
        body (None when the request has none). Any header that verifies is enough."""
        candidates = self._parse(request)
        origin = candidates[0].origin
        if self.domain_whitelist is not None and origin not in self.domain_whitelist:
            raise MatrixError(403, "M_FORBIDDEN", "Federation denied with this server")
        now_ms = int(self._clock() * 1000)
        reason = "no valid signature"
        for auth in candidates:
            # "If this property is included, but the value does not match the receiving
            # server's name, the receiving server must deny the request with 401."
            if auth.destination is not None and auth.destination != self.server_name:
                raise _unauthorized(f"Request is for {auth.destination}, not this server")
            try:
                verify_key, _ = await self.keyring.get_verify_key(origin, auth.key, now_ms)
                verify_request(auth, request.method, request.raw_path, body_json, verify_key)
            except (KeyLookupError, SignatureVerifyError) as exc:
                reason = str(exc)
                continue
            request[ORIGIN_KEY] = origin
            return origin
        logger.info("rejecting federation request %s %s from %s: %s", request.method,
                    request.raw_path, origin, reason)
        raise _unauthorized(f"Invalid signature for server {origin}: {reason}")


FEDERATION_AUTH = web.AppKey("hs_federation_auth", FederationAuthenticator)


async def authenticate_request(request: web.Request, body_json: Any) -> str:
    """``FederationAuthenticator.authenticate_request`` with the authenticator registered on
    the app under ``FEDERATION_AUTH``."""
    return await request.app[FEDERATION_AUTH].authenticate_request(request, body_json)
