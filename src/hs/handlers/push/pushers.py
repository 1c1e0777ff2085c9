"""Pushers (client-server "Push Notifications", pusher.yaml): validated and stored.

Delivering notifications to push gateways (``/_matrix/push/v1/notify``) or by email is not
done here; the stored pushers are what a sender would read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from hs.http.errors import MatrixError, bad_json, invalid_param
from hs.storage.push import Pusher, PushersStore

KINDS = ("http", "email")
MAX_APP_ID_CHARS = 64
MAX_PUSHKEY_BYTES = 512
NOTIFY_PATH = "/_matrix/push/v1/notify"
_REQUIRED_TO_SET = ("app_display_name", "device_display_name", "lang", "data")


def _str(body: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise bad_json(f"'{key}' must be a string")
    return value


def _missing(body: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    absent = [k for k in keys if body.get(k) is None]
    if absent:
        raise MatrixError(400, "M_MISSING_PARAM", f"Missing parameters: {', '.join(absent)}")


def _check_http_data(data: Mapping[str, Any]) -> None:
    """Spec: ``data.url`` is required for http pushers, an HTTP(S) URL whose path is
    ``/_matrix/push/v1/notify`` (plain http kept for local gateways, as Synapse does)."""
    url = data.get("url")
    if not isinstance(url, str):
        raise invalid_param("'url' in 'data' is required for http pushers")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_param("'url' must be an http(s) URL")
    if parts.path != NOTIFY_PATH:
        raise invalid_param(f"'url' must have a path of '{NOTIFY_PATH}'")
    if "format" in data and not isinstance(data["format"], str):
        raise invalid_param("'format' must be a string")


class PushersHandler:
    def __init__(self, store: PushersStore, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    async def get_pushers(self, user_id: str) -> list[dict[str, Any]]:
        return [p.to_client() for p in await self.store.get_pushers(user_id)]

    async def set_pusher(self, user_id: str, device_id: str | None,
                         body: Mapping[str, Any]) -> None:
        """POST /pushers/set: create/replace, or delete when ``kind`` is null."""
        _missing(body, ("app_id", "pushkey"))
        if "kind" not in body:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing parameters: kind")
        app_id = _str(body, "app_id") or ""
        pushkey = _str(body, "pushkey") or ""
        if not app_id or len(app_id) > MAX_APP_ID_CHARS:
            raise invalid_param(f"'app_id' must be 1 to {MAX_APP_ID_CHARS} characters")
        if not pushkey or len(pushkey.encode()) > MAX_PUSHKEY_BYTES:
            raise invalid_param(f"'pushkey' must be 1 to {MAX_PUSHKEY_BYTES} bytes")
        kind = body["kind"]
        if kind is None:
            await self.store.delete_pusher(user_id, app_id, pushkey)
            return
        if kind not in KINDS:
            raise invalid_param(f"Unknown pusher kind {kind!r}")
        _missing(body, _REQUIRED_TO_SET)
        data = body["data"]
        if not isinstance(data, dict):
            raise bad_json("'data' must be an object")
        if kind == "http":
            _check_http_data(data)
        elif app_id != "m.email" or "@" not in pushkey:
            raise invalid_param("Email pushers need app_id 'm.email' and an email pushkey")
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise bad_json("'append' must be a boolean")
        pusher = Pusher(
            user_id=user_id, app_id=app_id, pushkey=pushkey, kind=kind,
            app_display_name=_str(body, "app_display_name") or "",
            device_display_name=_str(body, "device_display_name") or "",
            profile_tag=_str(body, "profile_tag", optional=True),
            lang=_str(body, "lang") or "", data=data, device_id=device_id,
            created_ts=self.clock())
        await self.store.set_pusher(pusher, append=append)

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """A removed device's pushers go with it (the device can no longer receive)."""
        await self.store.delete_for_devices(user_id, device_ids)


__all__ = ["PushersHandler"]
