"""Client-side crypto as Element does it (real ed25519 over canonical JSON, via PyNaCl) and
room membership set up directly in the events store."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey
from tests.server.harness import SERVER_NAME, Client
from tests.storage_events.helpers import RoomBuilder

from hs.core.canonical_json import encode_canonical_json
from hs.core.unpadded_base64 import encode_base64
from hs.storage.events import EventToPersist, StateAfter

V3 = "/_matrix/client/v3"


def uid(name: str) -> str:
    return f"@{name}:{SERVER_NAME}"


def pub(key: SigningKey) -> str:
    return encode_base64(bytes(key.verify_key))


def sign(obj: dict[str, Any], user_id: str, key_id: str, key: SigningKey) -> dict[str, Any]:
    """Add ``user_id``/``key_id``'s signature over the canonical JSON minus
    signatures/unsigned, as clients do (returns a signed copy)."""
    obj = copy.deepcopy(obj)
    payload = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    sig = key.sign(encode_canonical_json(payload)).signature
    obj.setdefault("signatures", {}).setdefault(user_id, {})[key_id] = encode_base64(sig)
    return obj


def cross_key(user_id: str, usage: str, key: SigningKey) -> dict[str, Any]:
    return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{pub(key)}": pub(key)}}


@dataclass
class Device:
    """A logged-in device with its own ed25519 identity key."""

    hs: Client
    user_id: str
    device_id: str
    token: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    curve: str = field(default_factory=lambda: encode_base64(SigningKey.generate().encode()))

    def device_keys(self) -> dict[str, Any]:
        keys = {"user_id": self.user_id, "device_id": self.device_id,
                "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
                "keys": {f"ed25519:{self.device_id}": pub(self.key),
                         f"curve25519:{self.device_id}": self.curve}}
        return sign(keys, self.user_id, f"ed25519:{self.device_id}", self.key)

    def otks(self, n: int, start: int = 0, *, fallback: bool = False) -> dict[str, Any]:
        out = {}
        for i in range(start, start + n):
            body: dict[str, Any] = {"key": encode_base64(bytes([i % 256]) * 32)}
            if fallback:
                body["fallback"] = True
            out[f"signed_curve25519:K{i}"] = sign(body, self.user_id,
                                                  f"ed25519:{self.device_id}", self.key)
        return out

    async def req(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.hs.request(method, V3 + path, body, token=self.token)

    async def upload(self, **body: Any) -> tuple[int, Any]:
        return await self.req("POST", "/keys/upload", body)


async def new_device(hs: Client, name: str, *, register: bool = True,
                     display_name: str | None = None) -> Device:
    extra = {"initial_device_display_name": display_name} if display_name else {}
    if register:
        result = await hs.register(name, **extra)
    else:
        status, result = await hs.login(name, **extra)
        assert status == 200, result
    return Device(hs, result["user_id"], result["device_id"], result["access_token"])


class Room:
    """A room whose membership events go straight into the events store."""

    def __init__(self, hs: Client, name: str, creator: str) -> None:
        self.hs = hs
        self.rb = RoomBuilder(f"!{name}:{SERVER_NAME}")
        self.creator = creator

    async def create(self, *members: str) -> Room:
        pdus = [self.rb.create(self.creator), self.rb.member(self.creator)]
        pdus += [self.rb.member(u) for u in members]
        await self._persist(pdus, first=True)
        return self

    async def set(self, user_id: str, membership: str) -> None:
        await self._persist([self.rb.member(user_id, membership)])

    async def _persist(self, pdus: list[Any], first: bool = False) -> None:
        batch = []
        for i, pdu in enumerate(pdus):
            if i == 0:
                before: Any = {} if first else StateAfter(self._last)
            else:
                before = StateAfter(pdus[i - 1].event_id)
            batch.append(EventToPersist(pdu, state_before=before))
        await self.hs.services.events.persist_events(batch)
        self._last = pdus[-1].event_id
