"""Our key endpoints: ``GET /_matrix/key/v2/server`` (spec "Publishing Keys") and the
notary ``GET /_matrix/key/v2/query/{serverName}`` / ``POST /_matrix/key/v2/query`` (spec
"Querying Keys Through Another Server").

The notary answers from the ``server_keys`` store and refetches from the origin when the
cached response is past half its lifetime (keys_server.yaml: notaries "should cache a
response for half of its lifetime") or lacks a requested key / validity. When the origin is
unreachable the last response is served anyway, so old events can still be checked. Each
returned object keeps the origin's signature and gets ours added.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from hs.core.auth.identifiers import is_valid_server_name
from hs.core.json_decode import JSONDecodeError, decode_json
from hs.core.keys import encode_verify_key_base64
from hs.core.signing import sign_json
from hs.federation.keyring import Keyring, strip_signatures
from hs.federation.local_keys import LocalKeys
from hs.http.errors import MatrixError
from hs.storage.server_keys import KeyResponseRow, ServerKeysStore

logger = logging.getLogger(__name__)

#: Origins fetched at once while answering one notary query.
MAX_CONCURRENT_ORIGIN_FETCHES = 10
#: Origins one query may make us fetch; the rest are answered from the cache only, so a
#: single request cannot turn us into a traffic amplifier.
MAX_ORIGIN_FETCHES_PER_QUERY = 100


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


class KeyServer:
    """Builds our signed key response and answers notary queries."""

    def __init__(
        self,
        local_keys: LocalKeys,
        keyring: Keyring | None = None,
        store: ServerKeysStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.local_keys = local_keys
        self.keyring = keyring
        self.store = store
        self._clock = clock
        self._cached: tuple[int, dict[str, Any]] | None = None
        self._inflight: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- our own keys ---------------------------------------------------------------------

    def server_keys(self) -> dict[str, Any]:
        """Our key response, signed by every current key; rebuilt at half its lifetime so
        it never promises less than half of ``key_refresh_interval``."""
        now = self._now_ms()
        if self._cached is not None and self._cached[0] > now:
            return self._cached[1]
        local = self.local_keys
        body: dict[str, Any] = {
            "server_name": local.server_name,
            "valid_until_ts": now + local.key_validity_ms,
            "verify_keys": {
                kid: {"key": encode_verify_key_base64(vk)}
                for kid, vk in local.verify_keys().items()
            },
            "old_verify_keys": {
                kid: {"key": encode_verify_key_base64(old.verify_key),
                      "expired_ts": old.expired_ts}
                for kid, old in local.old_keys.items()
            },
        }
        for key in local.signing_keys:
            sign_json(body, local.server_name, key)
        self._cached = (now + local.key_validity_ms // 2, body)
        return body

    def _notary_sign(self, response: dict[str, Any]) -> dict[str, Any]:
        signed = strip_signatures(response, response["server_name"])
        for key in self.local_keys.signing_keys:
            sign_json(signed, self.local_keys.server_name, key)
        return signed

    # -- notary ---------------------------------------------------------------------------

    async def query(
        self, criteria: Mapping[str, Mapping[str, int | None]], any_key_min: int | None = None
    ) -> list[dict[str, Any]]:
        """Answer ``{server: {key_id: minimum_valid_until_ts | None}}``. A server with no
        key IDs gets all its keys, valid until ``any_key_min`` (default: now)."""
        semaphore = asyncio.Semaphore(MAX_CONCURRENT_ORIGIN_FETCHES)
        budget = [MAX_ORIGIN_FETCHES_PER_QUERY]

        async def one(server: str, kids: Mapping[str, int | None]) -> list[dict[str, Any]]:
            if server == self.local_keys.server_name:
                return [self.server_keys()]
            if not is_valid_server_name(server):
                return []
            return await self._query_remote(server, kids, any_key_min, semaphore, budget)

        results = await asyncio.gather(*(one(s, k) for s, k in criteria.items()))
        return [entry for entries in results for entry in entries]

    async def _query_remote(
        self,
        server: str,
        kids: Mapping[str, int | None],
        any_key_min: int | None,
        semaphore: asyncio.Semaphore,
        budget: list[int],
    ) -> list[dict[str, Any]]:
        now = self._now_ms()
        wanted = {kid: (now if ts is None else ts) for kid, ts in kids.items()}
        rows = await self._cached_rows(server)
        stale = not self._satisfies(rows, wanted, now,
                                    now if any_key_min is None else any_key_min)
        if stale and budget[0] > 0:
            budget[0] -= 1
            async with semaphore:
                fetched = await self._refresh(server)
            rows = await self._cached_rows(server) or rows
            if not rows and fetched is not None:  # no store: serve what we just verified
                row = KeyResponseRow(server, server, int(fetched["valid_until_ts"]), now, b"")
                rows = [(row, fetched)]
        return [self._notary_sign(body) for body in self._pick(rows, wanted)]

    async def _cached_rows(self, server: str) -> list[tuple[KeyResponseRow, dict[str, Any]]]:
        if self.store is None:
            return []
        rows = await self.store.get_key_responses(server)
        return [(row, orjson.loads(row.key_json)) for row in rows]

    @staticmethod
    def _keys_of(body: dict[str, Any]) -> dict[str, int]:
        """key ID -> valid until, as the response states it."""
        until: dict[str, int] = {}
        for kid, entry in (body.get("old_verify_keys") or {}).items():
            until[kid] = int(entry.get("expired_ts", 0))
        for kid in body.get("verify_keys") or {}:
            until[kid] = int(body["valid_until_ts"])
        return until

    def _satisfies(
        self,
        rows: list[tuple[KeyResponseRow, dict[str, Any]]],
        wanted: dict[str, int],
        now: int,
        any_key_min: int,
    ) -> bool:
        if not rows:
            return False
        best, body = rows[0]
        if best.fetched_ts + (best.valid_until_ts - best.fetched_ts) // 2 < now:
            return False  # past half its lifetime
        if not wanted:
            return best.valid_until_ts >= any_key_min
        known: dict[str, int] = {}
        for _, b in rows:
            for kid, until in self._keys_of(b).items():
                known[kid] = max(until, known.get(kid, 0))
        # An old key cannot get any more valid by refetching: its presence suffices.
        return all(
            kid in known and (known[kid] >= ts or kid not in (body.get("verify_keys") or {}))
            for kid, ts in wanted.items()
        )

    @classmethod
    def _pick(
        cls, rows: list[tuple[KeyResponseRow, dict[str, Any]]], wanted: dict[str, int]
    ) -> list[dict[str, Any]]:
        """The longest-valid response, plus older ones holding requested keys it lacks."""
        if not rows:
            return []
        picked = [rows[0][1]]
        covered = set(cls._keys_of(rows[0][1]))
        for _, body in rows[1:]:
            extra = (set(wanted) & set(cls._keys_of(body))) - covered
            if extra:
                picked.append(body)
                covered |= extra
        return picked

    async def _refresh(self, server: str) -> dict[str, Any] | None:
        """Fetch from the origin, one fetch per server at a time; None when it failed."""
        pending = self._inflight.get(server)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[dict[str, Any] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._inflight[server] = future
        result: dict[str, Any] | None = None
        try:
            if self.keyring is not None:
                result = await self.keyring.fetch_from_origin(server)
        except Exception as exc:
            logger.info("notary: fetching keys of %s failed: %s", server, exc)
        finally:
            future.set_result(result)
            del self._inflight[server]
        return result

    # -- HTTP handlers --------------------------------------------------------------------

    async def handle_server_keys(self, request: web.Request) -> web.Response:
        return _json(self.server_keys())

    async def handle_query_get(self, request: web.Request) -> web.Response:
        server = request.match_info["serverName"]
        raw = request.query.get("minimum_valid_until_ts")
        min_ts: int | None = None
        if raw is not None:
            try:
                min_ts = int(raw)
            except ValueError:
                raise MatrixError(400, "M_INVALID_PARAM",
                                  "minimum_valid_until_ts must be an integer") from None
        # No key IDs given: "the notary server should query for all keys".
        return _json({"server_keys": await self.query({server: {}}, min_ts)})

    async def handle_query_post(self, request: web.Request) -> web.Response:
        try:
            body = decode_json(await request.read())
        except JSONDecodeError as exc:
            raise MatrixError(400, exc.errcode, str(exc)) from None
        criteria = _parse_post_criteria(body)
        return _json({"server_keys": await self.query(criteria)})


def _parse_post_criteria(body: Any) -> dict[str, dict[str, int | None]]:
    if not isinstance(body, dict) or not isinstance(body.get("server_keys"), dict):
        raise MatrixError(400, "M_BAD_JSON", "'server_keys' must be an object")
    criteria: dict[str, dict[str, int | None]] = {}
    for server, kids in body["server_keys"].items():
        if not isinstance(kids, dict):
            raise MatrixError(400, "M_BAD_JSON", f"server_keys.{server} must be an object")
        wanted: dict[str, int | None] = {}
        for kid, query in kids.items():
            if not isinstance(query, dict):
                raise MatrixError(400, "M_BAD_JSON", f"server_keys.{server}.{kid} must be an "
                                  "object")
            ts = query.get("minimum_valid_until_ts")
            if ts is not None and type(ts) is not int:
                raise MatrixError(400, "M_BAD_JSON", "minimum_valid_until_ts must be an integer")
            wanted[kid] = ts
        criteria[server] = wanted
    return criteria


KEY_SERVER = web.AppKey("hs_key_server", KeyServer)


def setup_key_routes(app: web.Application, key_server: KeyServer) -> None:
    """Register the key endpoints (the ``keys`` listener resource) on ``app``."""
    app[KEY_SERVER] = key_server
    app.router.add_get("/_matrix/key/v2/server", key_server.handle_server_keys)
    # Removed from the spec (v1.x key IDs in the path) but still requested by old servers.
    app.router.add_get("/_matrix/key/v2/server/{keyId}", key_server.handle_server_keys)
    app.router.add_get("/_matrix/key/v2/query/{serverName}", key_server.handle_query_get)
    app.router.add_post("/_matrix/key/v2/query", key_server.handle_query_post)
