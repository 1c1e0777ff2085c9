"""``/_matrix/federation/v1/user/devices``, ``/user/keys/query`` and ``/user/keys/claim``
served by the real app, called with X-Matrix signed requests from ``remote.test``."""

from __future__ import annotations

from typing import Any

import orjson
from tests.e2e.helpers import new_device
from tests.federation_sender.helpers import REMOTE, REMOTE_KEY, homeserver
from tests.server.harness import SERVER_NAME

from hs.core.x_matrix import sign_request

FED = "/_matrix/federation/v1"


async def fed(hs: Any, method: str, path: str, body: Any = None, *, sign: bool = True,
              raw: bytes | None = None) -> tuple[int, Any]:
    headers = {}
    if sign:
        headers["Authorization"] = sign_request(REMOTE_KEY, REMOTE, SERVER_NAME, method, path,
                                                body)
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    if data is not None:
        headers["Content-Type"] = "application/json"
    return await hs.request(method, path, data=data, headers=headers)


async def test_devices_query_and_claim(database_config) -> None:
    async with homeserver(database_config) as hs:
        dev = await new_device(hs, "alice", display_name="Phone")
        status, _ = await dev.upload(device_keys=dev.device_keys(), one_time_keys=dev.otks(1))
        assert status == 200
        user = dev.user_id
        await hs.services.sender.outbound.idle()

        status, body = await fed(hs, "GET", f"{FED}/user/devices/{user}")
        assert status == 200, body
        assert body["user_id"] == user and body["stream_id"] > 0
        (device,) = body["devices"]
        assert device["device_id"] == dev.device_id
        assert device["device_display_name"] == "Phone"
        assert device["keys"]["keys"] == dev.device_keys()["keys"]

        status, body = await fed(hs, "POST", f"{FED}/user/keys/query", {
            "device_keys": {user: [], f"@bob:{REMOTE}": []}})
        assert status == 200, body
        assert list(body["device_keys"]) == [user]
        assert dev.device_id in body["device_keys"][user]

        claim = {"one_time_keys": {user: {dev.device_id: "signed_curve25519"}}}
        status, body = await fed(hs, "POST", f"{FED}/user/keys/claim", claim)
        assert status == 200, body
        (key_id,) = body["one_time_keys"][user][dev.device_id]
        assert key_id.startswith("signed_curve25519:")
        status, body = await fed(hs, "POST", f"{FED}/user/keys/claim", claim)
        assert body["one_time_keys"].get(user, {}) == {}  # each key handed out once


async def test_errors(database_config) -> None:
    async with homeserver(database_config) as hs:
        await new_device(hs, "alice")
        user = f"@alice:{SERVER_NAME}"
        status, body = await fed(hs, "POST", f"{FED}/user/keys/query",
                                 {"device_keys": {user: []}}, sign=False)
        assert status == 401 and body["errcode"] == "M_UNAUTHORIZED"
        status, body = await fed(hs, "GET", f"{FED}/user/devices/@x:elsewhere")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        for path in ("/user/keys/query", "/user/keys/claim"):
            status, body = await fed(hs, "POST", FED + path, {"device_keys": 5,
                                                              "one_time_keys": []})
            assert status == 400 and body["errcode"] == "M_BAD_JSON", body
            status, body = await fed(hs, "POST", FED + path, raw=b"{nope", sign=False)
            assert status == 400 and body["errcode"] == "M_NOT_JSON"
        status, body = await fed(hs, "POST", f"{FED}/user/keys/query",
                                 {"device_keys": {user: "x"}})
        assert status == 400 and body["errcode"].startswith("M_")


async def test_mounted_by_the_federation_resource(database_config) -> None:
    """The ``federation`` listener resource picks these routes up (no duplicate routes)."""
    from aiohttp.test_utils import TestClient, TestServer

    from hs.app import create_app

    async with homeserver(database_config) as hs:
        app = create_app(hs.services, frozenset({"federation"}))
        paths = {r.resource.canonical for r in app.router.routes() if r.resource}
        assert f"{FED}/user/devices/{{user_id}}" in paths
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            resp = await client.post(f"{FED}/user/keys/claim", json={"one_time_keys": {}})
            assert resp.status == 401
            assert (await resp.json())["errcode"] == "M_UNAUTHORIZED"
