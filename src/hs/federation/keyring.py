"""Remote servers' signing keys: fetch, verify, cache (memory + database), coalesce.

Lookup order for a ``(server, key_id)`` wanted valid until at least some timestamp: our own
keys, the in-memory LRU, the ``server_keys`` store, then a fetch - from each
``trusted_key_servers`` notary (``POST /_matrix/key/v2/query``) and, for whatever is still
missing, from the server itself (``GET /_matrix/key/v2/server``). Concurrent lookups for a
server share one fetch, and a server that was just asked is not asked again for a key it
did not have (spec: "Requesting servers should limit how frequently they query").

Every response is checked before use: ``server_name`` is the server asked about, the object
is signed by that server with one of its own ``verify_keys`` (all such signatures must
verify), and a notary's copy must also carry a valid signature from a key configured for
that notary. ``valid_until_ts`` is stored as published: the 7-day cap for room v5+ is the
event checker's business (spec keys.yaml "valid_until_ts").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nacl.signing import VerifyKey

from hs.core.canonical_json import encode_canonical_json
from hs.core.keys import (
    KeyFormatError,
    KeyLookup,
    decode_verify_key_base64,
    decode_verify_key_bytes,
    is_signing_algorithm_supported,
)
from hs.core.signing import SignatureVerifyError, verify_signed_json
from hs.federation.local_keys import LocalKeys
from hs.storage.server_keys import ServerKeysStore, StoredKey

logger = logging.getLogger(__name__)

SERVER_KEYS_PATH = "/_matrix/key/v2/server"
QUERY_PATH = "/_matrix/key/v2/query"

#: ``(server_name, key_id, minimum_valid_until_ts)``
KeyRequest = tuple[str, str, int]


class KeyClient(Protocol):
    """What the keyring needs from ``FederationClient`` (tests may pass a fake)."""

    async def get_json(self, destination: str, path: str, query: Any = None,
                       **kw: Any) -> Any: ...

    async def post_json(self, destination: str, path: str, content: Any, query: Any = None,
                        **kw: Any) -> Any: ...


class KeyLookupError(Exception):
    """No key ``key_id`` of ``server_name`` valid long enough could be found."""

    def __init__(self, server_name: str, key_id: str, reason: str) -> None:
        super().__init__(f"no usable key {key_id} for {server_name}: {reason}")
        self.server_name = server_name
        self.key_id = key_id


class InvalidKeyResponse(ValueError):
    """A key response is malformed, for the wrong server, or not validly signed."""


@dataclass(frozen=True)
class TrustedKeyServer:
    """A notary from ``trusted_key_servers``; ``verify_keys`` sign its responses."""

    server_name: str
    verify_keys: Mapping[str, VerifyKey] = field(default_factory=dict)
    accept_keys_insecurely: bool = False


def trusted_key_servers_from_config(entries: Iterable[Any]) -> list[TrustedKeyServer]:
    """Convert the config model's entries (``verify_keys`` as base64 strings)."""
    result = []
    for entry in entries:
        keys = {}
        for kid, b64 in (getattr(entry, "verify_keys", None) or {}).items():
            alg, _, version = kid.partition(":")
            keys[kid] = decode_verify_key_base64(alg, version, b64)
        result.append(TrustedKeyServer(entry.server_name, keys,
                                       bool(getattr(entry, "accept_keys_insecurely", False))))
    return result


def _usable(notary: TrustedKeyServer) -> bool:
    return bool(notary.verify_keys) or notary.accept_keys_insecurely or \
        notary.server_name == "matrix.org"


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidKeyResponse(f"{what} must be a non-negative integer")
    return value


def _check_signed_by(obj: dict[str, Any], signer: str, keys: Mapping[str, VerifyKey]) -> None:
    """At least one of ``keys`` signed ``obj`` as ``signer`` and every such signature holds."""
    signatures = obj.get("signatures")
    theirs = signatures.get(signer) if isinstance(signatures, dict) else None
    if not isinstance(theirs, dict):
        raise InvalidKeyResponse(f"not signed by {signer}")
    known = [kid for kid in theirs if kid in keys]
    if not known:
        raise InvalidKeyResponse(f"not signed by {signer} with a known key")
    for kid in known:
        try:
            verify_signed_json(obj, signer, keys[kid])
        except SignatureVerifyError as exc:
            raise InvalidKeyResponse(str(exc)) from None


def parse_key_response(response: Any, expected_server: str) -> dict[str, StoredKey]:
    """Validate a ``/_matrix/key/v2/server`` object and return its keys by key ID.

    Current keys are valid until ``valid_until_ts``; old keys until their ``expired_ts``.
    Keys of algorithms we cannot use are skipped. Raises ``InvalidKeyResponse``.
    """
    if not isinstance(response, dict):
        raise InvalidKeyResponse("key response is not an object")
    if response.get("server_name") != expected_server:
        raise InvalidKeyResponse(
            f"server_name {response.get('server_name')!r} is not {expected_server!r}"
        )
    valid_until = _int(response.get("valid_until_ts"), "valid_until_ts")
    verify_keys = response.get("verify_keys")
    old_keys = response.get("old_verify_keys", {})
    if not isinstance(verify_keys, dict) or not isinstance(old_keys, dict):
        raise InvalidKeyResponse("verify_keys/old_verify_keys must be objects")
    keys: dict[str, StoredKey] = {}
    current: dict[str, VerifyKey] = {}
    for section, entries in (("old_verify_keys", old_keys), ("verify_keys", verify_keys)):
        for kid, entry in entries.items():
            if not is_signing_algorithm_supported(kid):
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise InvalidKeyResponse(f"{section}.{kid} has no 'key'")
            try:
                alg, _, version = kid.partition(":")
                vk = decode_verify_key_base64(alg, version, entry["key"])
            except KeyFormatError as exc:
                raise InvalidKeyResponse(f"{section}.{kid}: {exc}") from None
            if section == "verify_keys":
                current[kid] = vk
                keys[kid] = StoredKey(bytes(vk), valid_until, None)
            else:
                expired = _int(entry.get("expired_ts"), f"{section}.{kid}.expired_ts")
                keys[kid] = StoredKey(bytes(vk), expired, expired)
    _check_signed_by(response, expected_server, current)
    return keys


def strip_signatures(response: dict[str, Any], keep: str) -> dict[str, Any]:
    """A copy carrying only ``keep``'s signatures (what a notary re-signs and serves)."""
    copy = dict(response)
    signatures = response.get("signatures")
    copy["signatures"] = {keep: dict(signatures[keep])} if isinstance(signatures, dict) and \
        isinstance(signatures.get(keep), dict) else {}
    return copy


@dataclass(frozen=True, slots=True)
class _CachedKey:
    verify_key: VerifyKey
    valid_until: int


class Keyring:
    """Verified remote keys for event and request signature checks."""

    def __init__(
        self,
        store: ServerKeysStore | None,
        client: KeyClient | None,
        *,
        local_keys: LocalKeys | None = None,
        trusted_key_servers: Sequence[TrustedKeyServer] = (),
        clock: Callable[[], float] = time.time,
        cache_size: int = 20_000,
        min_refetch_interval_ms: int = 60_000,
        fetch_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.client = client
        self.local_keys = local_keys
        # Synapse's rule: a notary without verify_keys (trusted on TLS alone) needs
        # accept_keys_insecurely, except matrix.org, the default notary.
        self.trusted_key_servers = [t for t in trusted_key_servers if _usable(t)]
        for t in trusted_key_servers:
            if not _usable(t):
                logger.warning("trusted key server %s has no verify_keys and "
                               "accept_keys_insecurely is false: not used", t.server_name)
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], _CachedKey] = OrderedDict()
        self._cache_size = cache_size
        self._min_refetch_ms = min_refetch_interval_ms
        self._fetch_timeout = fetch_timeout
        self._last_fetch: dict[str, int] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}
        #: Number of fetch rounds started (for tests and metrics).
        self.fetch_count = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- public lookups -------------------------------------------------------------------

    async def get_verify_key(
        self, server_name: str, key_id: str, minimum_valid_until_ts: int = 0
    ) -> tuple[VerifyKey, int]:
        """The key and its ``valid_until_ts`` (``expired_ts`` for old keys), or
        ``KeyLookupError`` when none is known or it expires before the minimum."""
        found = await self.get_verify_keys([(server_name, key_id, minimum_valid_until_ts)])
        result = found.get((server_name, key_id))
        if result is None:
            raise KeyLookupError(server_name, key_id, "not found or not valid long enough")
        return result

    async def get_verify_keys(
        self, requests: Iterable[KeyRequest]
    ) -> dict[tuple[str, str], tuple[VerifyKey, int]]:
        """Batch form: every request that could be satisfied; the others are left out.

        One fetch round covers all servers still missing keys: a single notary POST for
        all of them, then direct fetches in parallel.
        """
        wanted: dict[tuple[str, str], int] = {}
        for server, kid, min_ts in requests:
            if is_signing_algorithm_supported(kid):
                wanted[(server, kid)] = max(min_ts, wanted.get((server, kid), 0))
        found: dict[tuple[str, str], tuple[VerifyKey, int]] = {}
        self._satisfy_from_memory(wanted, found)
        if wanted and self.store is not None:
            await self._load_from_store({s for s, _ in wanted})
            self._satisfy_from_memory(wanted, found)
        if wanted and self.client is not None:
            await self._fetch_missing(wanted)
            self._satisfy_from_memory(wanted, found)
        return found

    async def key_lookup_for(self, requests: Iterable[KeyRequest]) -> KeyLookup:
        """Fetch what ``requests`` need, then a synchronous ``KeyLookup`` for
        ``hs.core.events.check_events`` over the result."""
        found = await self.get_verify_keys(requests)

        def lookup(server_name: str, key_id: str) -> tuple[VerifyKey, int] | None:
            return found.get((server_name, key_id))

        return lookup

    # -- tiers ----------------------------------------------------------------------------

    def _satisfy_from_memory(
        self,
        wanted: dict[tuple[str, str], int],
        found: dict[tuple[str, str], tuple[VerifyKey, int]],
    ) -> None:
        now = self._now_ms()
        for pair, min_ts in list(wanted.items()):
            server, kid = pair
            if self.local_keys is not None and server == self.local_keys.server_name:
                local = self.local_keys.lookup(kid, now)
                if local is not None and local[1] >= min_ts:
                    found[pair] = local
                del wanted[pair]  # never fetch our own keys
                continue
            cached = self._cache.get(pair)
            if cached is not None and cached.valid_until >= min_ts:
                self._cache.move_to_end(pair)
                found[pair] = (cached.verify_key, cached.valid_until)
                del wanted[pair]

    def _remember(self, server: str, keys: Mapping[str, StoredKey]) -> None:
        for kid, stored in keys.items():
            pair = (server, kid)
            old = self._cache.get(pair)
            if old is not None and old.valid_until > stored.valid_until and \
                    bytes(old.verify_key) == stored.verify_key and stored.expired_ts is None:
                continue  # an older copy of the same key (e.g. a notary's stale cache)
            try:
                vk = decode_verify_key_bytes(kid, stored.verify_key)
            except KeyFormatError:
                continue
            self._cache[pair] = _CachedKey(vk, stored.valid_until)
            self._cache.move_to_end(pair)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _load_from_store(self, servers: set[str]) -> None:
        assert self.store is not None
        for server, keys in (await self.store.get_keys(servers)).items():
            self._remember(server, keys)

    async def _fetch_missing(self, wanted: dict[tuple[str, str], int]) -> None:
        by_server: dict[str, dict[str, int]] = {}
        for (server, kid), min_ts in wanted.items():
            by_server.setdefault(server, {})[kid] = min_ts
        waits: list[asyncio.Task[None]] = []
        to_fetch: dict[str, dict[str, int]] = {}
        now = self._now_ms()
        for server, kids in by_server.items():
            task = self._inflight.get(server)
            if task is not None:
                waits.append(task)  # coalesce with the fetch already running
            elif now - self._last_fetch.get(server, -(10**15)) >= self._min_refetch_ms:
                to_fetch[server] = kids
        if to_fetch:
            task = asyncio.get_running_loop().create_task(self._fetch_round(to_fetch))
            for server in to_fetch:
                self._inflight[server] = task
            names = tuple(to_fetch)
            task.add_done_callback(lambda t: self._done(names, t))
            waits.append(task)
        for task in set(waits):
            try:
                await asyncio.shield(task)
            except Exception as exc:  # failures only mean "not found"
                logger.warning("key fetch failed: %s", exc)

    def _done(self, servers: tuple[str, ...], task: asyncio.Task[None]) -> None:
        for server in servers:
            if self._inflight.get(server) is task:
                del self._inflight[server]
        if not task.cancelled():
            task.exception()  # retrieved: waiters log it

    async def _fetch_round(self, wanted: dict[str, dict[str, int]]) -> None:
        self.fetch_count += 1
        now = self._now_ms()
        if len(self._last_fetch) > self._cache_size:  # forget throttles that have lapsed
            self._last_fetch = {s: t for s, t in self._last_fetch.items()
                                if now - t < self._min_refetch_ms}
        for server in wanted:
            self._last_fetch[server] = now
        missing = dict(wanted)
        for notary in self.trusted_key_servers:
            if not missing:
                break
            try:
                await asyncio.wait_for(self._query_notary(notary, missing), self._fetch_timeout)
            except Exception as exc:
                logger.warning("key query to notary %s failed: %s", notary.server_name, exc)
            missing = self._still_missing(missing)
        if missing:
            results = await asyncio.gather(
                *(asyncio.wait_for(self.fetch_from_origin(s), self._fetch_timeout)
                  for s in missing),
                return_exceptions=True,
            )
            for server, result in zip(missing, results, strict=True):
                if isinstance(result, BaseException):
                    logger.info("fetching keys of %s failed: %s", server, result)

    def _still_missing(self, wanted: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        missing: dict[str, dict[str, int]] = {}
        for server, kids in wanted.items():
            for kid, min_ts in kids.items():
                cached = self._cache.get((server, kid))
                if cached is None or cached.valid_until < min_ts:
                    missing.setdefault(server, {})[kid] = min_ts
        return missing

    # -- fetchers -------------------------------------------------------------------------

    async def fetch_from_origin(self, server_name: str) -> dict[str, Any]:
        """GET the server's own key response, verify, cache and store it; returns it."""
        if self.client is None:
            raise KeyLookupError(server_name, "*", "no federation client")
        response = await self.client.get_json(server_name, SERVER_KEYS_PATH)
        keys = parse_key_response(response, server_name)
        await self._accept(server_name, server_name, response, keys)
        return response  # type: ignore[no-any-return]

    async def _query_notary(
        self, notary: TrustedKeyServer, wanted: dict[str, dict[str, int]]
    ) -> None:
        assert self.client is not None
        body = {
            "server_keys": {
                server: {kid: {"minimum_valid_until_ts": ts} for kid, ts in kids.items()}
                for server, kids in wanted.items()
            }
        }
        response = await self.client.post_json(notary.server_name, QUERY_PATH, body)
        entries = response.get("server_keys") if isinstance(response, dict) else None
        if not isinstance(entries, list):
            raise InvalidKeyResponse(f"notary {notary.server_name}: no server_keys list")
        for entry in entries:
            server = entry.get("server_name") if isinstance(entry, dict) else None
            if not isinstance(server, str) or server not in wanted:
                continue  # only accept what we asked about
            try:
                keys = parse_key_response(entry, server)
                if notary.verify_keys:
                    _check_signed_by(entry, notary.server_name, notary.verify_keys)
            except InvalidKeyResponse as exc:
                logger.warning("notary %s gave bad keys for %s: %s", notary.server_name,
                               server, exc)
                continue
            await self._accept(server, notary.server_name, entry, keys)

    async def _accept(
        self, server: str, from_server: str, response: dict[str, Any],
        keys: Mapping[str, StoredKey],
    ) -> None:
        self._remember(server, keys)
        if self.store is not None:
            kept = strip_signatures(response, server)
            await self.store.store_server_keys(
                server, from_server, self._now_ms(), keys, encode_canonical_json(kept),
                int(response["valid_until_ts"]),
            )
