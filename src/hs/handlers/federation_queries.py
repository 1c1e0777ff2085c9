"""Outbound federation queries made on behalf of clients (server-server "Querying for
information" and "End-to-End Encryption"): remote profiles, remote room aliases, remote
users' device keys and one-time keys, and remote device lists.

Key queries go to every involved server concurrently; a server that fails or times out
lands in the client response's ``failures`` map (``{"status": ..., "message": ...}``) as the
client-server spec describes, and never fails the whole request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hs.federation.client import (
    FederationClient,
    FederationRequestError,
    HttpResponseError,
    encode_path,
)
from hs.http.errors import MatrixError

logger = logging.getLogger(__name__)

FED = "/_matrix/federation/v1"
_KEY_FIELDS = ("device_keys", "master_keys", "self_signing_keys")


def _server(user_id: str) -> str:
    return user_id.split(":", 1)[1] if isinstance(user_id, str) and ":" in user_id else ""


def _failure(exc: Exception) -> dict[str, Any]:
    status = exc.status if isinstance(exc, HttpResponseError) else 503
    return {"status": status, "message": str(exc)}


def _as_matrix_error(exc: FederationRequestError) -> MatrixError:
    """A remote's 404 stays 404; anything else is the remote being unavailable."""
    if isinstance(exc, HttpResponseError) and exc.status in (400, 403, 404):
        return MatrixError(exc.status, exc.errcode or "M_UNKNOWN",
                           exc.error or "Remote server refused the query")
    return MatrixError(502, "M_UNKNOWN", f"Failed to query remote server: {exc}")


class FederationQueries:
    def __init__(self, server_name: str, client: FederationClient,
                 timeout: float = 10.0) -> None:
        self.server_name = server_name
        self.client = client
        self.timeout = timeout

    # -- profile / directory ----------------------------------------------------------------

    async def query_profile(self, user_id: str, field: str | None = None) -> dict[str, Any]:
        """``GET /query/profile`` on the user's server; MatrixError on failure."""
        query = {"user_id": user_id} if field is None else {"user_id": user_id,
                                                            "field": field}
        try:
            body = await self.client.get_json(_server(user_id), f"{FED}/query/profile",
                                              query, timeout=self.timeout)
        except FederationRequestError as exc:
            raise _as_matrix_error(exc) from None
        if not isinstance(body, dict):
            raise MatrixError(502, "M_UNKNOWN", "Invalid profile response")
        return body

    async def query_directory(self, alias: str) -> dict[str, Any]:
        """``GET /query/directory`` on the alias's server: ``{room_id, servers}``."""
        try:
            body = await self.client.get_json(_server(alias), f"{FED}/query/directory",
                                              {"room_alias": alias}, timeout=self.timeout)
        except FederationRequestError as exc:
            raise _as_matrix_error(exc) from None
        if (not isinstance(body, dict) or not isinstance(body.get("room_id"), str)
                or not isinstance(body.get("servers"), list)):
            raise MatrixError(502, "M_UNKNOWN", "Invalid directory response")
        return body

    async def user_devices(self, user_id: str) -> dict[str, Any]:
        """``GET /user/devices/{userId}`` (device-list resync)."""
        body = await self.client.get_json(
            _server(user_id), encode_path("_matrix", "federation", "v1", "user", "devices",
                                          user_id), timeout=self.timeout)
        if not isinstance(body, dict):
            raise ValueError("device list response is not an object")
        return body

    # -- keys -------------------------------------------------------------------------------

    async def query_keys(self, device_keys: dict[str, list[str]],
                         timeout: float | None = None) -> dict[str, Any]:
        """Client ``/keys/query`` for remote users: ``device_keys``, ``master_keys``,
        ``self_signing_keys`` and ``failures`` keyed by server name. Answers are kept only
        for the users asked of that server."""
        by_server: dict[str, dict[str, list[str]]] = {}
        for user_id, devices in device_keys.items():
            by_server.setdefault(_server(user_id), {})[user_id] = devices
        out: dict[str, Any] = {f: {} for f in _KEY_FIELDS}
        out["failures"] = {}

        async def one(server: str, users: dict[str, list[str]]) -> None:
            try:
                body = await self.client.post_json(server, f"{FED}/user/keys/query",
                                                   {"device_keys": users},
                                                   timeout=timeout or self.timeout)
            except (FederationRequestError, OSError, TimeoutError) as exc:
                out["failures"][server] = _failure(exc)
                return
            if not isinstance(body, dict):
                out["failures"][server] = {"status": 502, "message": "Invalid response"}
                return
            for field in _KEY_FIELDS:
                got = body.get(field)
                if isinstance(got, dict):
                    out[field].update({u: v for u, v in got.items()
                                       if u in users and isinstance(v, dict)})

        await asyncio.gather(*(one(s, u) for s, u in by_server.items()
                               if s and s != self.server_name))
        return out

    async def claim_keys(self, one_time_keys: dict[str, dict[str, str]],
                         timeout: float | None = None) -> dict[str, Any]:
        """Client ``/keys/claim`` for remote users: ``one_time_keys`` and ``failures``."""
        by_server: dict[str, dict[str, dict[str, str]]] = {}
        for user_id, devices in one_time_keys.items():
            by_server.setdefault(_server(user_id), {})[user_id] = devices
        out: dict[str, Any] = {"one_time_keys": {}, "failures": {}}

        async def one(server: str, users: dict[str, dict[str, str]]) -> None:
            try:
                body = await self.client.post_json(server, f"{FED}/user/keys/claim",
                                                   {"one_time_keys": users},
                                                   timeout=timeout or self.timeout)
            except (FederationRequestError, OSError, TimeoutError) as exc:
                out["failures"][server] = _failure(exc)
                return
            got = body.get("one_time_keys") if isinstance(body, dict) else None
            if not isinstance(got, dict):
                out["failures"][server] = {"status": 502, "message": "Invalid response"}
                return
            out["one_time_keys"].update({u: v for u, v in got.items()
                                         if u in users and isinstance(v, dict)})

        await asyncio.gather(*(one(s, u) for s, u in by_server.items()
                               if s and s != self.server_name))
        return out


__all__ = ["FederationQueries"]
