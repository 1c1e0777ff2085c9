"""A small blocking Matrix client-server API client that works against Synapse and hs alike."""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from nacl.signing import SigningKey, VerifyKey
from tests.interop.synapse_fed import insecure_ssl

T = TypeVar("T")
#: Upper bound (seconds) for anything that must cross federation.
WAIT = float(os.environ.get("HS_INTEROP_WAIT", "15"))
_SSL = insecure_ssl()
_TXN = itertools.count()


class MatrixError(Exception):
    """A non-2xx answer: ``status``, ``errcode`` and the body."""

    def __init__(self, method: str, url: str, status: int, body: Any) -> None:
        self.status, self.body = status, body
        self.errcode = body.get("errcode") if isinstance(body, dict) else None
        super().__init__(f"{method} {url} -> {status} {body}")


def request(base_url: str, method: str, path: str, body: Any = None, *,
            token: str | None = None, params: dict[str, Any] | None = None,
            timeout: float = 30) -> Any:
    """One JSON request; raises :class:`MatrixError` on a non-2xx status."""
    url = base_url + path
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_SSL) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")[:500]
        raise MatrixError(method, path, exc.code, parsed) from None
    return json.loads(raw) if raw else {}


def q(value: str) -> str:
    """Percent-encode one path segment (room IDs, aliases, user IDs)."""
    return urllib.parse.quote(value, safe="")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = WAIT,
             interval: float = 0.25) -> T:
    """Call ``probe`` until it returns a truthy value; MatrixErrors count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
            if result:
                return result
            last = result
        except MatrixError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last: {last}")
        time.sleep(interval)


def _diff(a: Any, b: Any) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        rows = [f"{k}: {a.get(k)} != {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
        return "; ".join(rows)
    if isinstance(a, list) and isinstance(b, list):
        return f"{len(a)} items vs {len(b)}: {a[:5]}...{a[-5:]} vs {b[:5]}...{b[-5:]}"
    return f"{a!r} != {b!r}"


def wait_equal(left: Callable[[], Any], right: Callable[[], Any], what: str,
               timeout: float = WAIT, interval: float = 0.5) -> Any:
    """Poll until ``left() == right()``; on timeout the assertion shows the difference."""
    last: list[Any] = [None, None]

    def probe() -> bool:
        last[:] = [left(), right()]
        return bool(last[0] == last[1])

    try:
        wait_for(probe, what, timeout, interval)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; difference: {_diff(last[0], last[1])}") from None
    return last[0]


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def unpadded_b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def sign_json(obj: dict[str, Any], signer: str, key_id: str, key: SigningKey) -> dict[str, Any]:
    """``obj`` with an ed25519 signature by ``signer`` added (spec "Signing JSON")."""
    unsigned = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    sig = unpadded_b64(key.sign(canonical_json(unsigned)).signature)
    out = dict(obj)
    out["signatures"] = {**obj.get("signatures", {}), signer: {**obj.get("signatures", {})
                                                              .get(signer, {}), key_id: sig}}
    return out


def verify_json(obj: dict[str, Any], signer: str, key_id: str, verify_key_b64: str) -> None:
    """Raise ``nacl.exceptions.BadSignatureError`` unless ``signer`` signed ``obj``."""
    unsigned = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    sig = b64decode(obj["signatures"][signer][key_id])
    VerifyKey(b64decode(verify_key_b64)).verify(canonical_json(unsigned), sig)


class Client:
    """A logged-in user on one server (``server`` is a FedSynapse/FedHs)."""

    def __init__(self, server: Any, user_id: str, token: str, device_id: str) -> None:
        self.server, self.user_id, self.token, self.device_id = server, user_id, token, device_id
        self.since: str | None = None

    def __repr__(self) -> str:
        return f"<Client {self.user_id}>"

    @property
    def server_name(self) -> str:
        return str(self.server.server_name)

    def call(self, method: str, path: str, body: Any = None, *, prefix: str = "/_matrix/client/v3",
             **kwargs: Any) -> Any:
        return request(self.server.base_url, method, prefix + path, body, token=self.token,
                       **kwargs)

    # -- rooms ---------------------------------------------------------------------------

    def create_room(self, room_version: str, *, preset: str = "public_chat",
                    **extra: Any) -> str:
        body = {"preset": preset, "room_version": room_version, **extra}
        return str(self.call("POST", "/createRoom", body)["room_id"])

    def join(self, room: str, via: list[str] | None = None) -> str:
        params = {"server_name": via} if via else None
        return str(self.call("POST", f"/join/{q(room)}", {}, params=params,
                             timeout=60)["room_id"])

    def leave(self, room_id: str) -> None:
        self.call("POST", f"/rooms/{q(room_id)}/leave", {})

    def kick(self, room_id: str, user_id: str, reason: str = "interop") -> None:
        self.call("POST", f"/rooms/{q(room_id)}/kick", {"user_id": user_id, "reason": reason})

    def ban(self, room_id: str, user_id: str, reason: str = "interop") -> None:
        self.call("POST", f"/rooms/{q(room_id)}/ban", {"user_id": user_id, "reason": reason})

    def send(self, room_id: str, body: str, msgtype: str = "m.text") -> str:
        txn = f"t{next(_TXN)}-{secrets.token_hex(4)}"
        path = f"/rooms/{q(room_id)}/send/m.room.message/{txn}"
        return str(self.call("PUT", path, {"msgtype": msgtype, "body": body})["event_id"])

    def put_state(self, room_id: str, event_type: str, content: dict[str, Any],
                  state_key: str = "") -> str:
        path = f"/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}"
        return str(self.call("PUT", path, content)["event_id"])

    def state_content(self, room_id: str, event_type: str, state_key: str = "") -> Any:
        path = f"/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}"
        return self.call("GET", path)

    def state(self, room_id: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/rooms/{q(room_id)}/state"))

    def state_map(self, room_id: str) -> dict[tuple[str, str], str]:
        """``(type, state_key) -> event_id`` of the room's current state."""
        return {(e["type"], e["state_key"]): e["event_id"] for e in self.state(room_id)}

    def membership(self, room_id: str, user_id: str) -> str | None:
        try:
            return str(self.state_content(room_id, "m.room.member", user_id)["membership"])
        except MatrixError as exc:
            if exc.status == 404:
                return None
            raise

    def joined_members(self, room_id: str) -> set[str]:
        return set(self.call("GET", f"/rooms/{q(room_id)}/joined_members")["joined"])

    def messages(self, room_id: str, *, direction: str = "b", limit: int = 50,
                 from_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"dir": direction, "limit": limit}
        if from_token:
            params["from"] = from_token
        return dict(self.call("GET", f"/rooms/{q(room_id)}/messages", params=params,
                              timeout=60))

    def message_bodies(self, room_id: str, max_pages: int = 10) -> list[str]:
        """Every m.room.message body in the room, oldest first (paginating backwards)."""
        bodies: list[str] = []
        token: str | None = None
        for _ in range(max_pages):
            page = self.messages(room_id, from_token=token, limit=100)
            chunk = page.get("chunk", [])
            bodies.extend(e["content"].get("body", "") for e in chunk
                          if e["type"] == "m.room.message")
            token = page.get("end")
            if not chunk or not token:
                break
        return list(reversed(bodies))

    def typing(self, room_id: str, typing: bool = True, timeout_ms: int = 30000) -> None:
        body: dict[str, Any] = {"typing": typing}
        if typing:
            body["timeout"] = timeout_ms
        self.call("PUT", f"/rooms/{q(room_id)}/typing/{q(self.user_id)}", body)

    def receipt(self, room_id: str, event_id: str) -> None:
        self.call("POST", f"/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", {})

    # -- sync ----------------------------------------------------------------------------

    def sync(self, timeout_ms: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"timeout": timeout_ms}
        if self.since:
            params["since"] = self.since
        result = dict(self.call("GET", "/sync", params=params, timeout=timeout_ms / 1000 + 30))
        self.since = result.get("next_batch", self.since)
        return result

    def sync_until(self, found: Callable[[dict[str, Any]], T | None], what: str,
                   timeout: float = WAIT) -> T:
        """Incremental /sync until ``found(response)`` is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.user_id}: no /sync within {timeout:.0f}s showed "
                                     f"{what}")
            result = found(self.sync(timeout_ms=int(min(remaining, 2) * 1000)))
            if result:
                return result

    # -- profile, directory, keys, to-device -------------------------------------------------

    def set_displayname(self, name: str) -> None:
        self.call("PUT", f"/profile/{q(self.user_id)}/displayname", {"displayname": name})

    def profile(self, user_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/profile/{q(user_id)}"))

    def resolve_alias(self, alias: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/directory/room/{q(alias)}"))

    def send_to_device(self, event_type: str, messages: dict[str, dict[str, Any]]) -> None:
        txn = f"td{next(_TXN)}-{secrets.token_hex(4)}"
        self.call("PUT", f"/sendToDevice/{q(event_type)}/{txn}", {"messages": messages})


_USER_SEQ = itertools.count()


def register(server: Any, prefix: str = "u") -> Client:
    """A fresh user on ``server`` (open registration, m.login.dummy)."""
    localpart = f"{prefix}{next(_USER_SEQ)}x{secrets.token_hex(3)}"
    body = {"username": localpart, "password": "interop-pass-1",
            "auth": {"type": "m.login.dummy"}, "initial_device_display_name": "interop"}
    result = request(server.base_url, "POST", "/_matrix/client/v3/register", body)
    return Client(server, result["user_id"], result["access_token"], result["device_id"])


def make_device_keys(client: Client, n_otks: int = 2) -> tuple[dict[str, Any],
                                                                dict[str, Any]]:
    """Signed device keys and ``n_otks`` signed curve25519 one-time keys for ``client``."""
    ed = SigningKey.generate()
    ed_pub = unpadded_b64(bytes(ed.verify_key))
    device_keys = sign_json({
        "user_id": client.user_id, "device_id": client.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"curve25519:{client.device_id}": unpadded_b64(secrets.token_bytes(32)),
                 f"ed25519:{client.device_id}": ed_pub},
    }, client.user_id, f"ed25519:{client.device_id}", ed)
    otks = {f"signed_curve25519:AAAA{i}": sign_json(
        {"key": unpadded_b64(secrets.token_bytes(32))}, client.user_id,
        f"ed25519:{client.device_id}", ed) for i in range(n_otks)}
    return device_keys, otks
